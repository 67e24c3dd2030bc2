// phoenix/stacks: typed swarm stacks, the layer between the generic runner (phoenix) and the
// homelab's roles. What used to be exported from 'phoenix' (dockerStack, liveServices) is here.
export * from './types.ts';
export { renderCompose, validateCompose, parseCompose, ComposeValidationError, type ComposeFile, type ComposeService } from './compose.ts';
export { stackDrift, expectedSpec, type LiveService } from './drift.ts';
export { dockerStack, liveServices, type DockerStackOptions } from './docker.ts';
export { portainerStack, type PortainerStackVars } from './portainer.ts';
export { qdrantStack, nodesFor, type QdrantStackVars } from './qdrant.ts';
