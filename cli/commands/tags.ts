import type { Command } from 'commander';
import { openTarget } from '../../oci/transports.js';
import { addFormatFlag, addRegistryFlags, type RegistryFlags } from '../common.js';
import { printJson, printResult } from '../output.js';

interface TagsFlags extends RegistryFlags {
  format: string;
}

/** `kiln tags REPO`. */
export function registerTags(program: Command): void {
  const cmd = program
    .command('tags')
    .argument('<repository>', 'repository (e.g. localhost:5000/app) or oci:DIR')
    .description('list the tags of a repository, following pagination');
  addRegistryFlags(cmd);
  addFormatFlag(cmd);
  cmd.action(async (repository: string, flags: TagsFlags) => {
    const target = await openTarget(repository, {
      mode: 'read',
      repositoryOnly: true,
      registry: { authfile: flags.authfile, insecure: flags.insecure },
    });
    try {
      const tags = await target.tags();
      if (flags.format === 'json') printJson(tags);
      else if (tags.length > 0) printResult(tags.join('\n'));
    } finally {
      await target.close();
    }
  });
}
