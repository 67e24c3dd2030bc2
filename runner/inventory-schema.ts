// The JSON Schema of an inventory file (YAML or JSON), also applied to TypeScript inventories
// at run time. Edit here, then `npm run gen:validator` to regenerate the compiled validator.
const connectionProps = {
  port: { type: 'integer', minimum: 1, maximum: 65535 },
  user: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._-]+$' },
  key: { type: 'string', minLength: 1 },
  jump: {
    anyOf: [
      { type: 'string', minLength: 1 },
      {
        type: 'object',
        required: ['address'],
        additionalProperties: false,
        properties: {
          address: { type: 'string', minLength: 1 },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          user: { type: 'string', minLength: 1 },
          key: { type: 'string', minLength: 1 },
        },
      },
    ],
  },
  become: { type: 'boolean' },
  becomePassword: { type: 'object' },
  connection: { enum: ['ssh', 'local'] },
  connectTimeout: { type: 'number', exclusiveMinimum: 0 },
  keepaliveInterval: { type: 'number', exclusiveMinimum: 0 },
  keepaliveCountMax: { type: 'integer', minimum: 1 },
} as const;

export const inventorySchema = {
  type: 'object',
  required: ['hosts'],
  additionalProperties: false,
  properties: {
    knownHosts: { type: 'string', minLength: 1 },
    vars: { type: 'object' },
    groups: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_.-]+$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...connectionProps,
          hosts: { type: 'array', items: { type: 'string' } },
          vars: { type: 'object' },
        },
      },
    },
    hosts: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[A-Za-z0-9_.-]+$' },
      additionalProperties: {
        type: 'object',
        required: ['address'],
        additionalProperties: false,
        properties: {
          ...connectionProps,
          address: { type: 'string', minLength: 1 },
          groups: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' } },
          vars: { type: 'object' },
        },
      },
    },
  },
} as const;

