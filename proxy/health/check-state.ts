/**
 * One server's health, HAProxy's way (src/check.c, set_server_check_status):
 * a counter from 0 to rise+fall-1; the server is UP while it is >= rise. A
 * pass adds one, and reaching rise jumps to the top; a failure takes one off,
 * and dropping below rise goes straight to 0 (DOWN). A server starts UP at
 * `rise`, so like HAProxy a single failed first check marks it DOWN, while a
 * server that has been UP needs `fall` failures in a row. Pure.
 */
import { CertificateInfo } from "../../contract/certificate-info";

/** HAProxy's check status codes, as `show stat` prints them. */
export type CheckCode = "INI" | "L4OK" | "L4TOUT" | "L4CON" | "L6OK" | "L6TOUT" | "L6RSP" | "L7OK" | "L7STS" | "L7TOUT" | "L7RSP";

/** HAProxy's description of each code (check_desc in stats, "reason" in the log). */
export const CHECK_DESCRIPTION: Readonly<Record<CheckCode, string>> = {
  INI: "Initializing",
  L4OK: "Layer4 check passed",
  L4TOUT: "Layer4 timeout",
  L4CON: "Layer4 connection problem",
  L6OK: "Layer6 check passed",
  L6TOUT: "Layer6 timeout",
  L6RSP: "Layer6 invalid response",
  L7OK: "Layer7 check passed",
  L7STS: "Layer7 wrong status",
  L7TOUT: "Layer7 timeout",
  L7RSP: "Layer7 invalid response",
};

export interface CheckResult {
  readonly code: CheckCode;
  readonly passed: boolean;
  /** Detail: "Connection refused", the HTTP reason phrase, a TLS error. */
  readonly info: string;
  /** HTTP status of an L7 check. */
  readonly httpStatus?: number;
  readonly durationMs: number;
  /** A passed HTTP check: what the server's health response said about its certificate (empty when it said nothing). */
  readonly certificate?: CertificateInfo;
}

export interface HealthState {
  readonly health: number;
  readonly up: boolean;
}

export const initialHealth = (rise: number): HealthState => ({ health: rise, up: true });

export function nextHealth(state: HealthState, passed: boolean, rise: number, fall: number): HealthState {
  const top = rise + fall - 1;
  if (passed) {
    if (state.health >= top) return { health: top, up: true };
    const health = state.health + 1 >= rise ? top : state.health + 1;
    return { health, up: health >= rise };
  }
  if (state.health <= 0) return { health: 0, up: false };
  const health = state.health - 1 < rise ? 0 : state.health - 1;
  return { health, up: health >= rise };
}

/**
 * What the stats page shows: "UP", "DOWN", or HAProxy's transitional
 * "UP 1/3" (going down: failures so far / fall) and "DOWN 1/2" (going up).
 */
export function statusText(state: HealthState, rise: number, fall: number): string {
  const top = rise + fall - 1;
  if (state.up) return state.health >= top ? "UP" : `UP ${state.health - rise + 1}/${fall}`;
  return state.health === 0 ? "DOWN" : `DOWN ${state.health}/${rise}`;
}
