/**
 * The ClientHello handshake message (RFC 8446 §4.1.2, RFC 6066 §3), parsed
 * from the bytes that the record layer hands over, in any number of pieces.
 *
 * Each state is named after the wire field it reads. A state declares how many
 * bytes it needs and whether it keeps them (`keep`) or only counts them. Every
 * length is checked against the innermost enclosing length before it is
 * entered; the enclosing lengths nest, so checking the innermost one suffices.
 */

export type HandshakeRejectReason =
  | "not-client-hello"
  | "hello-too-large"
  | "hello-length-too-small"
  | "unsupported-version"
  | "session-id-too-long"
  | "cipher-suites-length-invalid"
  | "compression-methods-length-invalid"
  | "field-overflows-hello"
  | "extensions-length-mismatch"
  | "extension-overflows-extensions"
  | "duplicate-server-name-extension"
  | "server-name-extension-too-short"
  | "server-name-list-length-mismatch"
  | "server-name-entry-overflows-list"
  | "server-name-empty"
  | "server-name-too-long"
  | "duplicate-host-name";

type State =
  | "MsgType"
  | "MsgLength"
  | "LegacyVersion"
  | "Random"
  | "SessionIdLength"
  | "SessionId"
  | "CipherSuitesLength"
  | "CipherSuites"
  | "CompressionMethodsLength"
  | "CompressionMethods"
  | "ExtensionsLength"
  | "ExtensionType"
  | "ExtensionLength"
  | "ExtensionData"
  | "ServerNameListLength"
  | "ServerNameType"
  | "ServerNameLength"
  | "HostName"
  | "OtherServerName"
  | "Done";

/** The longest host_name we keep; DNS names are at most 253 octets. */
export const MAX_HOST_NAME_BYTES = 255;
const SERVER_NAME_EXTENSION = 0x0000;
const HOST_NAME_TYPE = 0x00;
const CLIENT_HELLO = 0x01;

export type HandshakeStep =
  | { readonly kind: "need-more"; readonly used: number }
  | { readonly kind: "done"; readonly used: number }
  | { readonly kind: "reject"; readonly reason: HandshakeRejectReason; readonly used: number };

export interface ClientHelloFields {
  /** Raw host_name bytes, or null when the hello carries none. */
  readonly hostName: Uint8Array | null;
  /** Length of the handshake body as declared in the message header. */
  readonly bodyLength: number;
  readonly legacyVersion: number;
  readonly extensionCount: number;
}

export class HandshakeParser {
  private state: State = "MsgType";
  private need = 1;
  private have = 0;
  private keep = true;
  private field = new Uint8Array(4);
  // Remaining bytes of each enclosing structure; -1 = not entered yet.
  private helloLeft = -1;
  private extensionsLeft = -1;
  private extensionLeft = -1;
  private nameListLeft = -1;
  private bodyLength = 0;
  private legacyVersion = 0;
  private extensionType = 0;
  private extensionCount = 0;
  private nameType = 0;
  private sawServerNameExtension = false;
  private hostName: Uint8Array | null = null;

  constructor(private readonly maxBodyBytes: number) {}

  fields(): ClientHelloFields {
    return {
      hostName: this.hostName,
      bodyLength: this.bodyLength,
      legacyVersion: this.legacyVersion,
      extensionCount: this.extensionCount,
    };
  }

  /** Feeds bytes [start, end) of `chunk`; reports how many were used. */
  feed(chunk: Uint8Array, start: number, end: number): HandshakeStep {
    let pos = start;
    for (;;) {
      // Zero-length fields complete without input (empty session id, ...).
      while (this.have === this.need && this.state !== "Done") {
        const failure = this.complete();
        if (failure !== null) return { kind: "reject", reason: failure, used: pos - start };
      }
      if (this.state === "Done") return { kind: "done", used: pos - start };
      if (pos >= end) return { kind: "need-more", used: pos - start };
      const take = Math.min(this.need - this.have, end - pos);
      if (this.keep) {
        // Byte by byte: the kept fields are short (1-3 bytes, a host name at most 255), and a
        // subarray view per field costs more than the copy.
        const field = this.field;
        for (let i = 0; i < take; i++) field[this.have + i] = chunk[pos + i]!;
      }
      this.have += take;
      pos += take;
      this.account(take);
    }
  }

  private account(n: number): void {
    if (this.helloLeft > 0) this.helloLeft -= n;
    if (this.extensionsLeft > 0) this.extensionsLeft -= n;
    if (this.extensionLeft > 0) this.extensionLeft -= n;
    if (this.nameListLeft > 0) this.nameListLeft -= n;
  }

  /** The innermost structure the next field must fit in. */
  private enclosing(): number {
    if (this.nameListLeft >= 0) return this.nameListLeft;
    if (this.extensionLeft >= 0) return this.extensionLeft;
    if (this.extensionsLeft >= 0) return this.extensionsLeft;
    return this.helloLeft;
  }

  private enter(state: State, need: number, keep: boolean): HandshakeRejectReason | null {
    const room = this.enclosing();
    if (room >= 0 && need > room) {
      if (this.nameListLeft >= 0) return "server-name-entry-overflows-list";
      if (this.extensionsLeft >= 0) return "extension-overflows-extensions";
      return "field-overflows-hello";
    }
    this.state = state;
    this.need = need;
    this.have = 0;
    this.keep = keep;
    if (keep && need > this.field.length) this.field = new Uint8Array(need);
    return null;
  }

  private u8(): number {
    return this.field[0]!;
  }
  private u16(): number {
    return (this.field[0]! << 8) | this.field[1]!;
  }
  private u24(): number {
    return (this.field[0]! << 16) | (this.field[1]! << 8) | this.field[2]!;
  }

  private finish(): null {
    this.state = "Done";
    return null;
  }

  /** Called when the current field is complete: validate it, pick the next. */
  private complete(): HandshakeRejectReason | null {
    switch (this.state) {
      case "MsgType":
        if (this.u8() !== CLIENT_HELLO) return "not-client-hello";
        return this.enter("MsgLength", 3, true);
      case "MsgLength": {
        const length = this.u24();
        if (length > this.maxBodyBytes) return "hello-too-large";
        // version(2) random(32) sid_len(1) cs_len(2) cs(>=2) comp_len(1) comp(>=1)
        if (length < 41) return "hello-length-too-small";
        this.bodyLength = length;
        this.helloLeft = length;
        return this.enter("LegacyVersion", 2, true);
      }
      case "LegacyVersion":
        this.legacyVersion = this.u16();
        if (this.field[0] !== 0x03) return "unsupported-version";
        return this.enter("Random", 32, false);
      case "Random":
        return this.enter("SessionIdLength", 1, true);
      case "SessionIdLength":
        if (this.u8() > 32) return "session-id-too-long";
        return this.enter("SessionId", this.u8(), false);
      case "SessionId":
        return this.enter("CipherSuitesLength", 2, true);
      case "CipherSuitesLength": {
        const length = this.u16();
        if (length < 2 || length % 2 !== 0) return "cipher-suites-length-invalid";
        return this.enter("CipherSuites", length, false);
      }
      case "CipherSuites":
        return this.enter("CompressionMethodsLength", 1, true);
      case "CompressionMethodsLength":
        if (this.u8() < 1) return "compression-methods-length-invalid";
        return this.enter("CompressionMethods", this.u8(), false);
      case "CompressionMethods":
        // Extensions are optional (a pre-TLS-1.2 hello may end here).
        if (this.helloLeft === 0) return this.finish();
        return this.enter("ExtensionsLength", 2, true);
      case "ExtensionsLength": {
        const length = this.u16();
        if (length !== this.helloLeft) return "extensions-length-mismatch";
        if (length === 0) return this.finish();
        this.extensionsLeft = length;
        return this.enter("ExtensionType", 2, true);
      }
      case "ExtensionType":
        this.extensionType = this.u16();
        this.extensionCount++;
        return this.enter("ExtensionLength", 2, true);
      case "ExtensionLength": {
        const length = this.u16();
        if (length > this.extensionsLeft) return "extension-overflows-extensions";
        if (this.extensionType !== SERVER_NAME_EXTENSION) return this.enter("ExtensionData", length, false);
        if (this.sawServerNameExtension) return "duplicate-server-name-extension";
        this.sawServerNameExtension = true;
        if (length < 2) return "server-name-extension-too-short";
        this.extensionLeft = length;
        return this.enter("ServerNameListLength", 2, true);
      }
      case "ExtensionData":
        return this.nextExtension();
      case "ServerNameListLength": {
        const length = this.u16();
        if (length === 0 || length !== this.extensionLeft) return "server-name-list-length-mismatch";
        this.nameListLeft = length;
        return this.enter("ServerNameType", 1, true);
      }
      case "ServerNameType":
        this.nameType = this.u8();
        return this.enter("ServerNameLength", 2, true);
      case "ServerNameLength": {
        const length = this.u16();
        if (length > this.nameListLeft) return "server-name-entry-overflows-list";
        if (length === 0) return "server-name-empty";
        if (this.nameType !== HOST_NAME_TYPE) return this.enter("OtherServerName", length, false);
        // RFC 6066: at most one name per name_type; two host_names is an attack or a bug.
        if (this.hostName !== null) return "duplicate-host-name";
        if (length > MAX_HOST_NAME_BYTES) return "server-name-too-long";
        return this.enter("HostName", length, true);
      }
      case "HostName":
        this.hostName = this.field.slice(0, this.need);
        return this.nextServerName();
      case "OtherServerName":
        return this.nextServerName();
      case "Done":
        return null;
    }
  }

  private nextServerName(): HandshakeRejectReason | null {
    if (this.nameListLeft > 0) return this.enter("ServerNameType", 1, true);
    this.nameListLeft = -1;
    this.extensionLeft = -1;
    return this.nextExtension();
  }

  private nextExtension(): HandshakeRejectReason | null {
    if (this.extensionsLeft === 0) return this.finish();
    return this.enter("ExtensionType", 2, true);
  }
}
