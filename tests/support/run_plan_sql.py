"""Runs an export's plan.sql in a real SQL engine and prints its rows as JSON lines.

usage: run_plan_sql.py duckdb|spark DIR...

DuckDB reads the Parquet files out of core (a memory limit and a spill folder are set); Spark runs
in local mode on the machine's Java. Each table is bound to DIR/<table>.parquet by name, as the
comment at the top of plan.sql says, and plan.sql is run as it is.
"""
import json, os, sys, tempfile

TABLES = ["blobs", "refs", "links", "tags", "uploads", "repositories", "multipart", "run"]
engine, folders = sys.argv[1], sys.argv[2:]


def emit(folder, rows):
    for kind, repository, name, upload_id, size in rows:
        print(json.dumps({"dir": folder, "kind": kind, "repository": repository, "name": name,
                          "upload_id": upload_id, "size": size}))


def path(folder, t):
    return os.path.join(folder, f"{t}.parquet")


if engine == "duckdb":
    import duckdb
    for folder in folders:
        con = duckdb.connect()
        con.execute("SET memory_limit = '256MB'")
        con.execute(f"SET temp_directory = '{tempfile.mkdtemp()}'")
        for t in TABLES:
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{path(folder, t)}')")
        emit(folder, con.execute(open(os.path.join(folder, "plan.sql")).read()).fetchall())
elif engine == "spark":
    # Loopback only: the driver binds to 127.0.0.1, not the host's address.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("regsweep-plan")
             .config("spark.ui.enabled", "false")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.driver.memory", "1g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    for folder in folders:
        for t in TABLES:
            spark.read.parquet(path(folder, t)).createOrReplaceTempView(t)
        sql = open(os.path.join(folder, "plan.sql")).read()
        emit(folder, [tuple(r) for r in spark.sql(sql).collect()])
    spark.stop()
else:
    sys.exit(f"unknown engine {engine}")
