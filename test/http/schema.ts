// A small JSON Schema checker for the subset openapi.yaml uses ($ref, allOf, type (also a list, for null), required,
// properties, items, enum), so responses can be checked against the document without a validator
// library. Returns the list of problems (empty when valid).
type Schema = Record<string, unknown>;

export function validate(value: unknown, schema: Schema, root: Schema, at = '$'): string[] {
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref.replace(/^#\//, '').split('/').reduce<unknown>((node, key) => (node as Schema)[key], root);
    return validate(value, target as Schema, root, at);
  }
  const problems: string[] = [];
  for (const part of (schema.allOf as Schema[] | undefined) ?? []) problems.push(...validate(value, part, root, at));
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
  if (Array.isArray(schema.type)) {
    // OpenAPI 3.1 nullable: type: [string, 'null']
    if (value === null && schema.type.includes('null')) return problems;
    const variants = (schema.type as string[]).filter((t) => t !== 'null').map((type) => validate(value, { ...schema, type }, root, at));
    return variants.some((v) => v.length === 0) ? problems : [...problems, ...variants[0]!];
  }
  switch (schema.type) {
    case undefined:
      break;
    case 'object':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return [...problems, `${at}: expected an object`];
      for (const key of (schema.required as string[] | undefined) ?? []) if (!(key in value)) problems.push(`${at}.${key}: required`);
      for (const [key, sub] of Object.entries((schema.properties as Record<string, Schema> | undefined) ?? {})) {
        if (key in value) problems.push(...validate((value as Schema)[key], sub, root, `${at}.${key}`));
      }
      break;
    case 'array':
      if (!Array.isArray(value)) return [...problems, `${at}: expected an array`];
      value.forEach((item, i) => problems.push(...validate(item, schema.items as Schema, root, `${at}[${i}]`)));
      break;
    case 'integer':
      if (!Number.isInteger(value)) problems.push(`${at}: expected an integer`);
      break;
    case 'number':
      if (typeof value !== 'number') problems.push(`${at}: expected a number`);
      break;
    case 'string':
    case 'boolean':
      if (typeof value !== schema.type) problems.push(`${at}: expected a ${schema.type}`);
      if (schema.format === 'date-time' && typeof value === 'string' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time`);
      break;
    default:
      problems.push(`${at}: schema type ${String(schema.type)} not supported by this checker`);
  }
  return problems;
}
