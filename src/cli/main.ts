#!/usr/bin/env node
/** The `larder` command: see `larder help` and docs/cli.md. */
import { runCli } from './run-cli.js';

process.exitCode = await runCli(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  interactive: process.stderr.isTTY === true,
});
