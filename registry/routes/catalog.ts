import type { AreaRoutes, RouteContext } from '../context.js';
import type { Page } from '../db/metadata-store.js';
import { pageRequest, paginate } from './pagination.js';

/** Repositories read per query while filtering the catalog. */
const BATCH = 500;

/** `GET /v2/_catalog`: repositories the caller may pull, in lexical order, with the `n`/`last` pagination of tags lists. */
export const catalogRoutes: AreaRoutes<'catalog'> = {
  GET: {
    actions: ['pull'],
    handle: async (ctx) => {
      const { res, url } = ctx;
      const page = await paginate(pageRequest(url.searchParams), '/v2/_catalog', (p) => listable(ctx, p));
      if (page?.link) res.setHeader('Link', page.link);
      res.status(200).json({ repositories: page?.items ?? [] });
    },
  },
};

/** One page of the repositories `ctx.listable` admits: hidden ones are skipped before counting, so pages stay full. */
async function listable(ctx: RouteContext, page: Page): Promise<string[]> {
  const out: string[] = [];
  let last = page.last;
  for (;;) {
    const batch = await ctx.metadata.listRepositories({ n: BATCH, last });
    for (const name of batch) {
      if (!(await ctx.listable(name))) continue;
      out.push(name);
      if (page.n !== undefined && out.length >= page.n) return out;
    }
    if (batch.length < BATCH) return out;
    last = batch[batch.length - 1];
  }
}
