// HAProxy sends an errorfile byte for byte, so it must be a complete raw HTTP response with
// CRLF line ends. HTTP/1.0 plus "Connection: close" keeps every client from waiting for more.

const BODY = [
  "<!DOCTYPE html>",
  '<html lang="en">',
  '<head><meta charset="utf-8"><title>503 Service Unavailable</title></head>',
  "<body>",
  "<h1>503 Service Unavailable</h1>",
  "<p>No server is available to handle this request. Please try again in a moment.</p>",
  "</body>",
  "</html>",
  "",
].join("\n");

export function renderErrorFile503(): string {
  const head = [
    "HTTP/1.0 503 Service Unavailable",
    "Cache-Control: no-cache",
    "Connection: close",
    "Content-Type: text/html; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(BODY, "utf8")}`,
  ];
  return head.map((l) => `${l}\r\n`).join("") + "\r\n" + BODY;
}
