import { Command } from 'commander';

const program = new Command('kiln')
  .description('Build, store, sign and audit OCI container images')
  .version('0.1.0');

await program.parseAsync(process.argv);
