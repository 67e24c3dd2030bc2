export { shell, command, type CommandOptions } from './command.ts';
export { copy, type CopyOptions } from './copy.ts';
export { template, renderTemplate, TemplateError, type TemplateOptions } from './template.ts';
export { file, type FileOptions } from './file.ts';
export { apt, type AptOptions } from './apt.ts';
export { systemd, type SystemdOptions } from './systemd.ts';
export { getUrl, type GetUrlOptions } from './get_url.ts';
export { waitFor, type WaitForOptions } from './wait_for.ts';
export { http, type HttpOptions } from './http.ts';
