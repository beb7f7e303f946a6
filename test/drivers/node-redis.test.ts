import { createClient } from 'redis';
import { createNodeRedisDriver, nodeRedisDriverFromClient } from '../../src/drivers/node-redis.js';
import { runDriverConformance, standaloneBackend } from './conformance.js';

runDriverConformance('node-redis', async (server) => createNodeRedisDriver({ url: server.url }), {
  backend: standaloneBackend,
  pubsub: true,
  remote: true,
  connections: true,
  atomicAcrossSlots: true,
  callerOwned: async (server) => {
    const client = createClient({ url: server.url, disableOfflineQueue: true });
    client.on('error', () => undefined);
    await client.connect();
    return {
      driver: nodeRedisDriverFromClient(client),
      works: async () => (await client.ping()) === 'PONG',
      close: async () => client.destroy(),
    };
  },
});
