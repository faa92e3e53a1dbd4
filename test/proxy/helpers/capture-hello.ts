/** Captures the first flight of real TLS clients on loopback. */
import { spawn } from "node:child_process";
import net from "node:net";
import tls from "node:tls";
import { ClientHelloParser } from "../../../proxy/codec/client-hello";

/** Listens on 127.0.0.1, collects bytes until a full hello has arrived, then closes. */
export function captureHello(startClient: (port: number) => () => void, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let stopClient: () => void = () => undefined;
    const server = net.createServer((socket) => {
      const parser = new ClientHelloParser(65536);
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        const result = parser.push(chunk);
        if (result.kind === "need-more") return;
        clearTimeout(timer);
        socket.destroy();
        server.close();
        stopClient();
        resolve(Buffer.concat(chunks).subarray(0, result.consumed));
      });
      socket.on("error", () => undefined);
    });
    const timer = setTimeout(() => {
      server.close();
      stopClient();
      reject(new Error("no hello captured"));
    }, timeoutMs);
    server.listen(0, "127.0.0.1", () => {
      stopClient = startClient((server.address() as net.AddressInfo).port);
    });
  });
}

export function captureNodeHello(servername: string): Promise<Buffer> {
  return captureHello((port) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
    socket.on("error", () => undefined);
    return () => socket.destroy();
  });
}

export function captureOpensslHello(servername: string): Promise<Buffer> {
  return captureHello((port) => {
    const child = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", servername], { stdio: ["pipe", "ignore", "ignore"] });
    child.on("error", () => undefined);
    return () => child.kill("SIGKILL");
  });
}
