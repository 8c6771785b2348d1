/*
 * CPU time a server spends, read from Linux's /proc: one thread's, a process's (all its threads), or a
 * process tree's (a server that forks workers, like uvicorn with --workers). Linux only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Whether this system has Linux's /proc (elsewhere the benches print no CPU times). */
export const HAS_PROC = existsSync('/proc/self/stat');

const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** The fields of a /proc stat file after the command name (which may hold spaces and parentheses). */
function statFields(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime in µs: fields 14 and 15 of stat, the 12th and 13th after the command name. */
function cpuOf(file: string): number {
  const fields = statFields(file);
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

/** CPU time in µs of a process's main thread and of the whole process. */
export function processCpu(pid: number): { main: number; all: number } {
  return { main: cpuOf(`/proc/${pid}/task/${pid}/stat`), all: cpuOf(`/proc/${pid}/stat`) };
}

/** CPU time in µs of a process and all its living descendants (ppid is the 2nd field after the name). */
export function processTreeCpu(root: number): number {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      parents.set(Number(entry), Number(statFields(`/proc/${entry}/stat`)[1]));
    } catch {
      // exited while listed
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  let total = 0;
  for (const pid of parents.keys()) {
    if (!inTree(pid)) continue;
    try {
      total += cpuOf(`/proc/${pid}/stat`);
    } catch {
      // exited since
    }
  }
  return total;
}
