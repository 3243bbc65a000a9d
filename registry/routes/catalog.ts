import type { AreaRoutes } from '../context.js';
import { pageRequest, paginate } from './pagination.js';

/** `GET /v2/_catalog`: repositories in lexical order, with the `n`/`last` pagination of tags lists. */
export const catalogRoutes: AreaRoutes<'catalog'> = {
  GET: {
    actions: ['pull'],
    handle: async ({ res, url, metadata }) => {
      const page = await paginate(pageRequest(url.searchParams), '/v2/_catalog', (p) => metadata.listRepositories(p));
      if (page?.link) res.setHeader('Link', page.link);
      res.status(200).json({ repositories: page?.items ?? [] });
    },
  },
};
