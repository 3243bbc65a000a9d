import type { AreaRoutes } from '../context.js';

/** `GET /v2/` (distribution-spec § Determining Support): 200 means the API is implemented. */
export const baseRoutes: AreaRoutes<'base'> = {
  GET: {
    actions: [],
    handle: async ({ res }) => {
      res.status(200).json({});
    },
  },
  HEAD: {
    actions: [],
    handle: async ({ res }) => {
      res.status(200).type('application/json').end();
    },
  },
};
