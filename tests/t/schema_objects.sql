-- One line per fact of the ioffice extension's schema, sorted: what
-- tests/t/010_upgrade.pl compares between an upgraded and a fresh database.
-- Names and definitions only: no OIDs, no data (sequences' values aside).
WITH ext AS (
    SELECT objid, classid FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ioffice')
      AND deptype = 'e'
), rel AS (
    SELECT c.oid, c.relname, c.relkind FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ioffice'
), facts AS (
    -- relations, their kind, row-level security, options, privileges, comment
    SELECT format('relation %s kind=%s rls=%s force=%s options=%s acl=%s comment=%s',
                  c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                  c.reloptions, c.relacl, obj_description(c.oid, 'pg_class')) AS fact
    FROM pg_class c JOIN rel ON rel.oid = c.oid
    WHERE c.relkind NOT IN ('i', 'S', 't')
    UNION ALL
    SELECT format('sequence %s', c.relname) FROM rel c WHERE c.relkind = 'S'
    -- columns (by name: an upgrade adds columns at the end)
    UNION ALL
    SELECT format('column %s.%s %s notnull=%s default=%s identity=%s generated=%s acl=%s comment=%s',
                  r.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl,
                  col_description(a.attrelid, a.attnum))
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE r.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
    -- constraints
    UNION ALL
    SELECT format('constraint %s.%s %s deferrable=%s deferred=%s', r.relname, co.conname,
                  pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred)
    FROM rel r JOIN pg_constraint co ON co.conrelid = r.oid
    -- indexes
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
    FROM rel r JOIN pg_index i ON i.indrelid = r.oid
    -- triggers
    UNION ALL
    SELECT format('trigger %s.%s %s enabled=%s', r.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled)
    FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal
    -- row-level security policies
    UNION ALL
    SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s',
                  r.relname, p.polname, p.polcmd, p.polpermissive,
                  (SELECT array_agg(CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END ORDER BY 1)
                   FROM unnest(p.polroles) AS x),
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
    -- views
    UNION ALL
    SELECT format('view %s %s', r.relname, pg_get_viewdef(r.oid))
    FROM rel r WHERE r.relkind IN ('v', 'm')
    -- rules other than views' own
    UNION ALL
    SELECT format('rule %s.%s %s', r.relname, ru.rulename, pg_get_ruledef(ru.oid))
    FROM rel r JOIN pg_rewrite ru ON ru.ev_class = r.oid WHERE ru.rulename <> '_RETURN'
    -- functions: whole definition, privileges, comment
    UNION ALL
    SELECT format('function %s %s acl=%s comment=%s', p.oid::regprocedure,
                  CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END,
                  p.proacl, obj_description(p.oid, 'pg_proc'))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'ioffice'
    -- types and their labels
    UNION ALL
    SELECT format('type %s kind=%s labels=%s', t.typname, t.typtype,
                  (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'ioffice' AND t.typtype IN ('e', 'd', 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    -- what the extension owns, anywhere, and which tables pg_dump dumps the rows of
    UNION ALL
    SELECT format('member %s', pg_describe_object(classid, objid, 0)) FROM ext
    UNION ALL
    SELECT format('dumped %s where=%s', c::regclass, w)
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, w) WHERE e.extname = 'ioffice'
    -- the schema's own privileges
    UNION ALL
    SELECT format('schema acl=%s', nspacl) FROM pg_namespace WHERE nspname = 'ioffice'
)
SELECT fact FROM facts ORDER BY fact;
