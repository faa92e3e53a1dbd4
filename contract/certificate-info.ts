// What a web server's health location says about the certificate it serves, and how both LB
// engines turn it into the text of a passed check (HAProxy's last_chk, the ts proxy's check
// info). nginx cannot describe its own certificate, so apply.sh writes these headers next to
// each certificate nginx loads (files/apply.sh, cert_info) and nginx reads them at the same
// reload as the certificate: the header always describes the certificate being served. Pure.

/** "issuer R11; names a.example,www.a.example" */
export const CERTIFICATE_HEADER = "x-ingress-certificate";
/** The certificate's notAfter in epoch seconds: the engines compute the days left from it. */
export const CERTIFICATE_EXPIRES_HEADER = "x-ingress-certificate-expires";
/** The ACME job's last word on this site's certificate: "ok", "no run yet", "failing: 2 run(s), next <time>", or "not used (...)". */
export const ACME_HEADER = "x-ingress-acme";

/**
 * HAProxy keeps 127 characters of a check's text (HCHK_DESC_LEN): the text puts what an operator
 * acts on first (days left, warning, ACME state) and the names last, where a cut does least harm.
 */
export const HAPROXY_CHECK_TEXT_MAX = 127;

/** A certificate closer to its expiry than this is reported as a warning. */
export const CERTIFICATE_WARNING_DAYS = 14;

/** The file apply.sh writes beside a certificate: the nginx add_header lines for the two certificate headers. */
export const CERTIFICATE_INFO_FILE = "ingress-info.conf";

export interface CertificateInfo {
  /** As the server described it: issuer and names. */
  readonly description?: string;
  /** notAfter, epoch seconds. */
  readonly expiresAt?: number;
  /** Whole days left, truncated toward zero as HAProxy's div does; negative once expired. */
  readonly daysLeft?: number;
  readonly warning?: boolean;
  readonly acme?: string;
}

/**
 * Reads the three headers from a response head's header lines (names in any case). A header sent
 * twice counts by its last copy, as HAProxy's res.fhdr takes it.
 */
export function parseHealthHeaders(headerLines: readonly string[], nowMs: number): CertificateInfo {
  const value = (name: string): string | undefined => {
    let found: string | undefined;
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) found = line.slice(colon + 1).trim();
    }
    return found;
  };
  const description = value(CERTIFICATE_HEADER);
  const expires = value(CERTIFICATE_EXPIRES_HEADER);
  const acme = value(ACME_HEADER);
  // apply.sh writes digits only. A value that is not (a web server of another make) shows "-"
  // here, while HAProxy casts its leading digits: the two pages may differ for it.
  const timing = expires !== undefined && /^\d{1,12}$/.test(expires) ? certificateTiming(Number(expires), nowMs) : {};
  return { ...(description !== undefined ? { description } : {}), ...timing, ...(acme !== undefined ? { acme } : {}) };
}

/** Days left (truncated toward zero, as HAProxy's div) and the warning, for a notAfter at `nowMs`. */
export function certificateTiming(expiresAt: number, nowMs: number): { readonly expiresAt: number; readonly daysLeft: number; readonly warning: boolean } {
  const left = expiresAt - Math.floor(nowMs / 1000);
  return { expiresAt, daysLeft: Math.trunc(left / 86400), warning: left < CERTIFICATE_WARNING_DAYS * 86400 };
}

/**
 * The text of a passed check, the same in both engines; "-" where a header is missing (a web
 * server of an older release), as HAProxy prints a sample it could not fetch.
 */
export function checkInfoText(info: CertificateInfo): string {
  const days = info.daysLeft !== undefined ? `${info.daysLeft}d left (${info.warning ? "WARNING" : "ok"})` : "-d left (-)";
  const until = info.expiresAt !== undefined ? new Date(info.expiresAt * 1000).toISOString().slice(0, 10) : "-";
  return `cert ${days} until ${until}; acme ${info.acme ?? "-"}; ${info.description ?? "-"}`;
}

/**
 * HAProxy's side of checkInfoText: `http-check` rules around the request. The headers are read
 * into check-scoped variables after a first expect and printed by the last expect's on-success:
 * a header fetch inside on-success's log-format would make HAProxy warn that a tcp-mode backend
 * cannot log HTTP (and fail under zero-warning), while set-var is a check rule, which may read
 * the response. A header that is missing leaves its variable unset, printed as "-". A notAfter
 * before now + 14 days is negative once check.soon is taken off, and bit 62 of a negative
 * 64-bit integer is set.
 */
export function haproxyCheckInfoRules(expectStatus: number): { readonly beforeSend: readonly string[]; readonly expect: readonly string[] } {
  const expires = `res.fhdr(${CERTIFICATE_EXPIRES_HEADER})`;
  return {
    beforeSend: ["http-check set-var(check.now) date", `http-check set-var(check.soon) date(${CERTIFICATE_WARNING_DAYS * 86400})`],
    expect: [
      `http-check expect status ${expectStatus}`,
      `http-check set-var(check.cert) res.fhdr(${CERTIFICATE_HEADER})`,
      `http-check set-var(check.days) ${expires},sub(check.now),div(86400)`,
      `http-check set-var(check.warn) ${expires},sub(check.soon),and(4611686018427387904),bool,iif(WARNING,ok)`,
      `http-check set-var(check.until) ${expires},utime(%Y-%m-%d)`,
      `http-check set-var(check.acme) res.fhdr(${ACME_HEADER})`,
      `http-check expect status ${expectStatus} on-success "cert %[var(check.days,-)]d left (%[var(check.warn,-)]) until %[var(check.until,-)]; acme %[var(check.acme,-)]; %[var(check.cert,-)]"`,
    ],
  };
}
