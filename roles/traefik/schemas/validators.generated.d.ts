import type { ErrorObject } from 'ajv';
type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
export declare const validateStatic: Validate;
export declare const validateDynamic: Validate;
