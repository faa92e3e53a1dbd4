/**
 * HAProxy's two-character termination state (%ts): who ended the session,
 * and in which phase. Only the codes this proxy can produce are listed.
 */
export type TerminationCause =
  | "-" // normal end
  | "C" // client aborted (FIN/RST or socket error)
  | "S" // server refused or aborted
  | "P" // the proxy ended it (no route, malformed input, bad PROXY header)
  | "R" // a resource limit (maxconn)
  | "c" // client-side timeout (incl. the inspect deadline)
  | "s" // server-side timeout (incl. connect timeout)
  | "K" // killed at the end of a drain
  | "I"; // an internal error: the worker holding it crashed

export type SessionPhase =
  | "-" // normal end
  | "R" // reading the PROXY header / ClientHello
  | "C" // connecting to the server
  | "D"; // tunnel established

export function terminationState(cause: TerminationCause, phase: SessionPhase): string {
  return cause === "-" ? "--" : `${cause}${phase}`;
}
