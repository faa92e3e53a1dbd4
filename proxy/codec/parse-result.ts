/**
 * The three outcomes every byte parser in this directory returns.
 * `consumed` is always an absolute offset into the stream the parser has been
 * fed so far, so callers never have to add up per-call counts.
 */
export type ParseResult<Done, Reason extends string> =
  | { readonly kind: "need-more"; readonly consumed: number }
  | ({ readonly kind: "done"; readonly consumed: number } & Done)
  | { readonly kind: "reject"; readonly reason: Reason; readonly consumed: number };
