// A canary tagger in JavaScript: marks each request `stable` or `canary` for the upstream
// (`x-variant`) and tells the client which one it got. A request carrying the configured
// header (default `x-canary`) is always canary; the others are canary for `percent` of
// users, chosen by a stable hash of the `user` header (or at random without one), so a
// user keeps their variant.
//
//   pluginConfig: {header: x-canary, percent: 10, user: x-user-id}

import { header } from 'portcullis:policy/request@0.1.0';
import { random } from 'portcullis:policy/host@0.1.0';

let config = { header: 'x-canary', percent: 0, user: 'x-user-id' };

/** FNV-1a of `text`, as a number in 0..100. */
function bucket(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % 100;
}

export const filter = {
  configure(text) {
    const given = JSON.parse(text) ?? {};
    const percent = given.percent ?? config.percent;
    if (typeof percent !== 'number' || percent < 0 || percent > 100) {
      throw `pluginConfig.percent must be a number from 0 to 100, got ${JSON.stringify(percent)}`;
    }
    config = { ...config, ...given };
  },

  onRequest() {
    const user = header(config.user);
    const roll = user !== undefined ? bucket(user) : Number(random() % 100n);
    const variant = header(config.header) !== undefined || roll < config.percent ? 'canary' : 'stable';
    const tag = [{ name: 'x-variant', value: variant }];
    return {
      tag: 'proceed',
      val: {
        setRequestHeaders: tag,
        addRequestHeaders: [],
        removeRequestHeaders: [],
        setResponseHeaders: tag,
        addResponseHeaders: [],
        removeResponseHeaders: [],
        destination: undefined,
      },
    };
  },
};
