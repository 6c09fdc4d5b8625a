/**
 * Stale pollers (workers/pollers.ts): Temporal lists a worker's poller for about a minute after
 * the worker is gone, and a command waiting for a run must not wait on it. A pinflow worker's
 * identity names its process and host; a listed poller of this host whose process is gone (or
 * a zombie) is stale, any other listed poller may be live.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { describe, it } from 'node:test';
import { isStale, processGone, processOf, registerOwnWorker } from '../../workers/pollers';
import { workerIdentity } from '../../workers/version';

const exited = (child: ReturnType<typeof spawn>) => new Promise<void>((resolve) => child.once('exit', () => resolve()));

describe('stale pollers', () => {
  it('reads the process and host out of a pinflow worker identity, nothing out of others', () => {
    assert.deepEqual(processOf(workerIdentity('0f51fc7687de', 'vm-1.example', 4242)), { pid: 4242, host: 'vm-1.example' });
    assert.equal(processOf('12345@vm-1'), undefined, "the SDK's default identity is not a pinflow worker's");
    assert.equal(processOf('pinflow@0f51fc7687de'), undefined);
    assert.equal(processOf(''), undefined);
  });

  it('a process that exited is gone; this one, and one that runs, are not', async () => {
    assert.equal(processGone(process.pid), false);
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      assert.equal(processGone(child.pid!), false, 'a running process');
    } finally {
      child.kill('SIGKILL');
    }
    await exited(child);
    assert.equal(processGone(child.pid!), true, 'a killed process');
  });

  it('a killed process its parent has not reaped yet (a zombie) is gone', async () => {
    // `exec sleep` replaces the shell with a parent that never reaps: its killed child stays a zombie.
    const parent = spawn('bash', ['-c', 'sleep 60 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
      assert.equal(processGone(pid), false, 'running');
      process.kill(pid, 'SIGKILL');
      let state = '';
      for (let i = 0; i < 50 && state !== 'Z'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        state = /\) (\S) /.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '';
      }
      assert.equal(state, 'Z', 'the killed child is a zombie: it still answers signal 0');
      assert.doesNotThrow(() => process.kill(pid, 0));
      assert.equal(processGone(pid), true);
    } finally {
      parent.kill('SIGKILL');
      await exited(parent);
    }
  });

  it('stale: a pinflow worker of this host whose process is gone; never a live one, another host, or another identity', () => {
    const host = os.hostname();
    const gone = (pid: number) => pid === 111;
    const poller = (identity: string) => ({ identity, lastAccessMs: Date.now() });
    assert.equal(isStale(poller(workerIdentity('0f51fc7687de', host, 111)), 'q', host, gone), true);
    assert.equal(isStale(poller(workerIdentity('0f51fc7687de', host, 222)), 'q', host, gone), false, 'its process runs');
    assert.equal(isStale(poller(workerIdentity('0f51fc7687de', 'other-host', 111)), 'q', host, gone), false, 'another host: only its taking tasks tells');
    assert.equal(isStale(poller('111@' + host), 'q', host, gone), false, 'not a pinflow worker identity');
  });

  it("this process's own listed poller is stale unless a worker it created on that queue is open", () => {
    const host = os.hostname();
    const own = { identity: workerIdentity('0f51fc7687de', host, process.pid), lastAccessMs: Date.now() };
    assert.equal(isStale(own, 'q1', host), true, 'no worker of this process: a closed one polled last');
    const release = registerOwnWorker('q1');
    const second = registerOwnWorker('q1');
    assert.equal(isStale(own, 'q1', host), false, 'open');
    assert.equal(isStale(own, 'q2', host), true, 'open on another queue only');
    release();
    release();
    assert.equal(isStale(own, 'q1', host), false, 'one of two closed (a second release changes nothing)');
    second();
    assert.equal(isStale(own, 'q1', host), true, 'both closed');
  });
});
