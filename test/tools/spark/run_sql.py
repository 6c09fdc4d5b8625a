"""Runs SQL statements in one local SparkSession; the Python side of test/tools/spark.ts.

Usage: python run_sql.py <job.json>

job.json: {"statements": [{"sql": str, "collect": str|null}], "outDir": str,
           "conf": {str: str}, "scratch": str, "eventsFile": str}

Each statement runs in order. A statement with "collect" writes <outDir>/<collect>.json, a
JSON array of row objects; one without is still executed in full (its result goes to
Spark's "noop" sink, so a SELECT costs what it would cost to compute). Progress goes to
stderr; the machine-readable outcome goes to eventsFile, one JSON object a line:
  {"event": "ready", "epochMs": ...}                  the session answers
  {"event": "statement", "index": i, "ms": ...}        statement i done
  {"event": "error", "index": i, "errorClass": ..., "sqlState": ..., "message": ...}
  {"event": "memory", "peakRssBytes": ...}             sum of VmHWM over this process tree

Plain PySpark and the standard library only.
"""

import base64
import datetime
import decimal
import json
import math
import os
import sys
import time

LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex{8}%n
logger.hadoop_native.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop_native.level = error
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = error
logger.file_stream_sink.name = org.apache.spark.sql.execution.streaming.FileStreamSink
logger.file_stream_sink.level = error
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
logger.parquet2.name = parquet
logger.parquet2.level = error
"""


class Events:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def emit(self, **event):
        self.f.write(json.dumps(event) + "\n")
        self.f.flush()


def say(msg):
    sys.stderr.write("[spark-sql] %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# JSON output. Written by hand rather than with json.dumps(default=...) so DECIMAL values
# keep their exact digits as JSON numbers.


def fmt_timestamp(d):
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % (d.year, d.month, d.day, d.hour, d.minute, d.second)
    if d.microsecond:
        s += ("." + "%06d" % d.microsecond).rstrip("0")
    return s


def to_json(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        if math.isnan(v):
            out.append('"NaN"')
        elif math.isinf(v):
            out.append('"Infinity"' if v > 0 else '"-Infinity"')
        else:
            out.append(repr(v))
    elif isinstance(v, decimal.Decimal):
        if v.is_nan():
            out.append('"NaN"')
        elif v.is_infinite():
            out.append('"Infinity"' if v > 0 else '"-Infinity"')
        else:
            out.append(format(v, "f"))
    elif isinstance(v, str):
        out.append(json.dumps(v, ensure_ascii=False))
    elif isinstance(v, datetime.datetime):  # before date: datetime is a subclass of date
        out.append('"%s"' % fmt_timestamp(v))
    elif isinstance(v, datetime.date):
        out.append('"%04d-%02d-%02d"' % (v.year, v.month, v.day))
    elif isinstance(v, datetime.timedelta):  # DAY TO SECOND interval: seconds as a number
        out.append(format(decimal.Decimal(v.days * 86400 + v.seconds) + decimal.Decimal(v.microseconds) / 1000000, "f"))
    elif isinstance(v, (bytes, bytearray)):  # BINARY: base64
        out.append('"%s"' % base64.b64encode(bytes(v)).decode("ascii"))
    elif isinstance(v, tuple) and hasattr(v, "__fields__"):  # STRUCT (a pyspark Row)
        obj_to_json(list(v.__fields__), list(v), out)
    elif isinstance(v, dict):  # MAP: keys as strings
        obj_to_json([k if isinstance(k, str) else key_text(k) for k in v.keys()], list(v.values()), out)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            to_json(x, out)
        out.append("]")
    elif type(v).__name__ == "VariantVal":
        out.append(v.toJson())
    else:
        out.append(json.dumps(str(v), ensure_ascii=False))


def key_text(k):
    out = []
    to_json(k, out)
    s = "".join(out)
    return json.loads(s) if s.startswith('"') else s


def obj_to_json(keys, values, out):
    out.append("{")
    for i, (k, x) in enumerate(zip(keys, values)):
        if i:
            out.append(",")
        out.append(json.dumps(k, ensure_ascii=False))
        out.append(":")
        to_json(x, out)
    out.append("}")


def write_rows(df, path):
    columns = df.columns
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise ValueError("the result has duplicate column names %s; alias them" % ", ".join(dupes))
    rows = df.collect()
    out = ["["]
    for i, row in enumerate(rows):
        out.append("\n" if i == 0 else ",\n")
        obj_to_json(columns, list(row), out)
    out.append("\n]\n" if rows else "]\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(out))
    os.replace(tmp, path)
    return len(rows)


# ---------------------------------------------------------------------------------------
# Errors: Spark's error condition (class), SQLSTATE and message, without the Python or JVM
# stack trace.


def describe_error(e):
    cls = state = None
    for getter in ("getCondition", "getErrorClass"):
        f = getattr(e, getter, None)
        if f is not None:
            try:
                cls = f()
            except Exception:
                cls = None
            if cls:
                break
    f = getattr(e, "getSqlState", None)
    if f is not None:
        try:
            state = f()
        except Exception:
            state = None
    java = getattr(e, "java_exception", None)  # Py4JJavaError: not a Spark error class
    if java is not None:
        try:
            message = str(java.toString())
        except Exception:
            message = str(e)
    else:
        message = str(e)
    # AnalysisException messages end with the unresolved plan: keep the text before it.
    lines = message.strip().split("\n")
    kept = []
    for line in lines:
        if line.startswith(("'", "+-", ":", "JVM stacktrace:", "\tat ")) and kept:
            break
        kept.append(line)
    message = "\n".join(kept).rstrip(";").strip()
    if not cls:
        cls = type(e).__name__ if java is None else None
    return cls, state, message


# ---------------------------------------------------------------------------------------
# Memory: peak RSS of this process and every descendant (the JVM spark-submit starts).


def tree_peak_rss():
    parent = {}
    hwm = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name, encoding="utf-8") as f:
                status = f.read()
        except OSError:
            continue
        pid = int(name)
        for line in status.split("\n"):
            if line.startswith("PPid:"):
                parent[pid] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm[pid] = int(line.split()[1]) * 1024
    tree = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sum(hwm.get(pid, 0) for pid in tree)


# ---------------------------------------------------------------------------------------


def quiet_python_loggers():
    # PySpark 4 logs every SQL error a second time, as one JSON line with both stack traces,
    # through these loggers; the runner reports the error itself.
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logger = PySparkLogger.getLogger(name)
        logger.setLevel(logging.CRITICAL)
        logger.disabled = True


def build_session(conf, scratch):
    from pyspark.sql import SparkSession

    quiet_python_loggers()

    log4j = os.path.join(scratch, "log4j2.properties")
    with open(log4j, "w", encoding="utf-8") as f:
        f.write(LOG4J2)
    tz = conf.get("spark.sql.session.timeZone", "UTC")
    java_opts = "-Dlog4j2.configurationFile=file:%s -Duser.timezone=%s -Djava.io.tmpdir=%s" % (log4j, tz, scratch)
    conf = dict(conf)
    conf["spark.driver.extraJavaOptions"] = (java_opts + " " + conf.get("spark.driver.extraJavaOptions", "")).strip()
    builder = SparkSession.builder
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    events = Events(job["eventsFile"])
    statements = job["statements"]
    out_dir = job["outDir"]
    t0 = time.perf_counter()
    try:
        spark = build_session(job["conf"], job["scratch"])
        spark.sql("SELECT 1").collect()  # the session answers: the JVM and its SQL engine are up
    except Exception as e:
        cls, state, message = describe_error(e)
        events.emit(event="error", index=-1, errorClass=cls, sqlState=state, message=message)
        return 1
    events.emit(event="ready", epochMs=int(time.time() * 1000))
    say("Spark %s up in %.1f s (ANSI mode %s)" % (spark.version, time.perf_counter() - t0, spark.conf.get("spark.sql.ansi.enabled")))
    code = 0
    try:
        for i, st in enumerate(statements):
            started = time.perf_counter()
            try:
                df = spark.sql(st["sql"])
                if st.get("collect"):
                    n = write_rows(df, os.path.join(out_dir, st["collect"] + ".json"))
                    what = "%d rows -> %s.json" % (n, st["collect"])
                else:
                    df.write.format("noop").mode("overwrite").save()
                    what = "done"
            except Exception as e:
                cls, state, message = describe_error(e)
                events.emit(event="error", index=i, errorClass=cls, sqlState=state, message=message)
                say("statement %d failed: %s" % (i, message.split("\n")[0]))
                code = 1
                break
            ms = (time.perf_counter() - started) * 1000
            events.emit(event="statement", index=i, ms=round(ms, 1))
            say("statement %d/%d: %s in %.0f ms" % (i + 1, len(statements), what, ms))
        events.emit(event="memory", peakRssBytes=tree_peak_rss())
    finally:
        spark.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
