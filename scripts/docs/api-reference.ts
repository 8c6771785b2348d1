/**
 * Builds the API reference with TypeDoc as `npm run docs` does (same typedoc.json), collecting every
 * warning and error instead of printing them. typedoc.json makes undocumented public exports
 * (validation.notDocumented), unresolved {@link} tags (invalidLink), types the reference refers to but
 * does not include (notExported) and relative paths that do not exist (invalidPath) warnings, and
 * treats warnings as errors: the reference builds clean or not at all. It skips TypeScript's own error
 * checking (`skipErrorChecking`): `npm run build` type-checks the same files first, and checking them
 * twice tripled the reference's CPU time (22 s against 7 s).
 */
import { Application, ConsoleLogger, LogLevel, TSConfigReader, TypeDocReader, type ProjectReflection } from 'typedoc';

/** Collects TypeDoc's messages (with their file and line) instead of writing them to the console. */
class CollectingLogger extends ConsoleLogger {
  readonly messages: string[] = [];
  override log(message: string, level: Exclude<LogLevel, LogLevel.None>): void {
    // eslint-disable-next-line no-control-regex
    if (level >= LogLevel.Warn) this.messages.push(message.replace(/\u001b\[[0-9;]*m/g, ''));
  }
}

export interface ReferenceBuild {
  /** Warnings and errors, each with the declaration's file and line where TypeDoc knows it. */
  problems: string[];
  /** The converted project (undefined when conversion itself failed), to compare against the exports. */
  project: ProjectReflection | undefined;
}

/**
 * Converts, validates and (when `out` is given) renders the reference configured by the typedoc.json
 * at `config`. `overrides` replace options of that file (the checker's own test points it at a
 * fixture project).
 */
export async function buildReference(config: string, out: string | undefined, overrides: Record<string, unknown> = {}): Promise<ReferenceBuild> {
  const app = await Application.bootstrap({ options: config, ...overrides }, [new TypeDocReader(), new TSConfigReader()]);
  const logger = new CollectingLogger();
  logger.level = LogLevel.Warn;
  app.logger = logger;
  const project = await app.convert();
  if (project) {
    app.validate(project);
    if (out !== undefined) await app.generateDocs(project, out);
  }
  const problems = [...logger.messages];
  if (!project && problems.length === 0) problems.push('TypeDoc could not convert the project');
  return { problems, project };
}

/** The names a project documents at its top level (exports of the entry point). */
export function documentedExports(project: ProjectReflection): Set<string> {
  return new Set((project.children ?? []).map((c) => c.name));
}
