// Resource options as the program sent them. The Mocks interface never shows them, but the
// mock monitor receives the whole RegisterResourceRequest: this reads them from there, for the
// local engine (which acts on them) and the component tests (which assert on them).
import * as pulumi from "@pulumi/pulumi";

export interface SentOptions {
  /** "" until the monitor has answered with the resource's URN. */
  readonly urn: string;
  readonly parent: string;
  readonly protect: boolean;
  readonly deleteBeforeReplace: boolean;
  readonly ignoreChanges: readonly string[];
  readonly deletedWith: string;
  /** URNs this resource waits for: dependsOn plus the resources its inputs come from. */
  readonly dependencies: readonly string[];
  readonly additionalSecretOutputs: readonly string[];
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProtect(): boolean;
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getDeletedwith(): string;
  getDependenciesList(): string[];
  getAdditionalsecretoutputsList(): string[];
}
type Callback = (err: unknown, response?: { getUrn(): string }) => void;

/**
 * Hooks the current mock monitor (call after `setMocks`): `sent` is called with each request's
 * options before the mocks see the registration (urn ""), `answered` once the URN is known.
 * Keys are "<type> <name>".
 */
export function watchRegistrations(sent: (key: string, options: SentOptions) => void, answered: (key: string, options: SentOptions) => void): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: Callback): Promise<void> };
  const register = monitor.registerResource.bind(monitor);
  const optionsOf = (req: RegisterRequest, urn: string): SentOptions => ({
    urn,
    parent: req.getParent(),
    protect: req.getProtect(),
    deleteBeforeReplace: req.getDeletebeforereplace(),
    ignoreChanges: req.getIgnorechangesList(),
    deletedWith: req.getDeletedwith(),
    dependencies: req.getDependenciesList(),
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
  });
  monitor.registerResource = (req, cb) => {
    const key = `${req.getType()} ${req.getName()}`;
    sent(key, optionsOf(req, ""));
    return register(req, (err, response) => {
      if (response) answered(key, optionsOf(req, response.getUrn()));
      cb(err, response);
    });
  };
}
