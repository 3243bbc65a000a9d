import type { AreaRoutes } from '../context.js';
import { RegistryError } from '../errors.js';
import { pageRequest, paginate } from './pagination.js';

/** `GET /v2/<name>/tags/list` (distribution-spec § Listing Tags): sorted, `n`/`last`, `Link`; 404 NAME_UNKNOWN for unknown repositories. */
export const tagsRoutes: AreaRoutes<'tags'> = {
  GET: {
    actions: ['pull'],
    handle: async ({ res, url, metadata }, { name }) => {
      const page = await paginate(pageRequest(url.searchParams), `/v2/${name}/tags/list`, (p) => metadata.listTags(name, p));
      if (!page) throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known to this registry`, { detail: { name } });
      if (page.link) res.setHeader('Link', page.link);
      res.status(200).json({ name, tags: page.items });
    },
  },
};
