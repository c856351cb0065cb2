-- regsweep's gc plan (as `regsweep gc` without -m makes it) over the tables `regsweep export`
-- writes, in portable SQL: a recursive CTE, joins and NOT EXISTS, which DuckDB, Spark SQL, Trino
-- and Athena run alike. Bind each table to its Parquet file first, e.g. in DuckDB
--   CREATE VIEW blobs AS SELECT * FROM 'DIR/blobs.parquet';   (and so on for every table)
-- and in Spark
--   spark.read.parquet('DIR/blobs.parquet').createOrReplaceTempView('blobs')
--
-- The tables:
--   blobs(digest, size, modified)            every blob with data; modified in Unix seconds
--                                            (NULL: never learned, which holds the blob back)
--   refs(manifest, referenced, kind)         what each parsed manifest references: 'blob' (config,
--                                            layers, artifact blobs), 'entry' (a list or index
--                                            entry followed as a manifest where the repository
--                                            links it), 'entry_data' (an entry whose data is no
--                                            manifest: only its data is kept), 'subject'
--   links(repository, digest, kind, dangling) 'revision' and 'layer' links; dangling: the store
--                                            holds no data for the digest
--   tags(repository, tag, digest)            each tag's current target (NULL where its link is bad)
--   uploads(repository, id, size, modified)  _uploads folders
--   repositories(repository, layer_links_newest)  when its newest _layers link was written,
--                                            where that decides whether the plan empties it
--   multipart(object_key, upload_id, size, initiated)  incomplete S3 multipart uploads
--   run(store, grace_cutoff, exported)       one row: data written after grace_cutoff is kept
--
-- One row per plan item: kind ('blob', 'layer_link', 'upload', 'multipart', 'repository'),
-- repository ('' where none), name (the digest, the upload's id, the multipart upload's key),
-- upload_id ('' where none) and size (0 where the item has none).
WITH RECURSIVE
roots (repository, manifest) AS (
    SELECT repository, digest FROM links WHERE kind = 'revision'
    UNION
    SELECT repository, digest FROM tags WHERE digest IS NOT NULL
),
reached (repository, manifest) AS (
    SELECT repository, manifest FROM roots
    UNION ALL
    SELECT r.repository, f.referenced
    FROM reached r
    JOIN refs f ON f.manifest = r.manifest
    JOIN links l ON l.repository = r.repository AND l.digest = f.referenced
    WHERE f.kind = 'entry'
),
marked (digest) AS (
    SELECT manifest FROM reached
    UNION
    SELECT f.referenced
    FROM reached r
    JOIN refs f ON f.manifest = r.manifest
    WHERE f.kind IN ('blob', 'entry', 'entry_data')
),
swept (digest, size) AS (
    SELECT b.digest, b.size
    FROM blobs b CROSS JOIN run
    WHERE b.modified <= run.grace_cutoff
      AND NOT EXISTS (SELECT 1 FROM marked m WHERE m.digest = b.digest)
),
recent_uploads (repository) AS (
    SELECT DISTINCT u.repository
    FROM uploads u CROSS JOIN run
    WHERE u.modified > run.grace_cutoff
),
kept_layer_links (repository) AS (
    SELECT DISTINCT l.repository
    FROM links l
    WHERE l.kind = 'layer'
      AND (l.dangling OR NOT EXISTS (SELECT 1 FROM swept s WHERE s.digest = l.digest))
),
emptied (repository) AS (
    SELECT p.repository
    FROM repositories p CROSS JOIN run
    WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = p.repository)
      AND NOT EXISTS (
          SELECT 1 FROM links l WHERE l.repository = p.repository AND l.kind = 'revision')
      AND NOT EXISTS (SELECT 1 FROM recent_uploads u WHERE u.repository = p.repository)
      AND (NOT EXISTS (SELECT 1 FROM kept_layer_links k WHERE k.repository = p.repository)
           OR p.layer_links_newest <= run.grace_cutoff)
)
SELECT 'blob' AS kind, '' AS repository, digest AS name, '' AS upload_id, size
FROM swept
UNION ALL
SELECT 'layer_link', l.repository, l.digest, '', 0
FROM links l
WHERE l.kind = 'layer'
  AND ((NOT l.dangling AND EXISTS (SELECT 1 FROM swept s WHERE s.digest = l.digest))
       OR EXISTS (SELECT 1 FROM emptied e WHERE e.repository = l.repository))
UNION ALL
SELECT 'upload', u.repository, u.id, '', u.size
FROM uploads u CROSS JOIN run
WHERE u.modified <= run.grace_cutoff
UNION ALL
SELECT 'multipart', '', mp.object_key, mp.upload_id, mp.size
FROM multipart mp CROSS JOIN run
WHERE mp.initiated <= run.grace_cutoff
UNION ALL
SELECT 'repository', e.repository, '', '', 0
FROM emptied e
