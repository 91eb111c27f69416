{{/*
initContainer "wait-for-migrations": blocks the runtime pod until the database schema is at the Alembic head
revision that this image's Langflow ships (the IDE, or any other Langflow of the same version, migrates it).
Langflow 1.13 has no setting to skip its startup migrations (services/database/utils.py initialize_database
always calls run_migrations), and processes migrating a fresh PostgreSQL at the same time can hang on the
migration advisory lock; a runtime that starts on a migrated schema finds nothing to do.
Same image, security context and resources as the Langflow container; the same LANGFLOW_DATABASE_URL.
*/}}
{{- define "langflow-runtime.waitForMigrations.container" -}}
{{- $w := .Values.waitForMigrations -}}
- name: wait-for-migrations
  image: {{ include "langflow-common.image" (dict "image" .Values.image "global" .Values.global "name" "runtime.image") }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  securityContext:
    {{- include "langflow-common.containerSecurityContext" . | nindent 4 }}
  command:
    - python
    - -c
    - |
      import importlib.util, os, sys, time
      from pathlib import Path
      import sqlalchemy as sa
      from alembic.script import ScriptDirectory
      timeout = float(os.environ["WAIT_TIMEOUT_SECONDS"])
      spec = importlib.util.find_spec("langflow")
      script = ScriptDirectory(str(Path(list(spec.submodule_search_locations)[0]) / "alembic"))
      heads = set(script.get_heads())
      url = os.environ["LANGFLOW_DATABASE_URL"]
      where = url.split("@", 1)[-1]
      print(f"waiting up to {timeout:.0f}s for {where} to be migrated to Langflow's head {sorted(heads)}", flush=True)
      deadline = time.monotonic() + timeout
      last = None
      while True:
          try:
              engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
              try:
                  with engine.connect() as conn:
                      if sa.inspect(conn).has_table("alembic_version"):
                          current = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
                      else:
                          current = set()
              finally:
                  engine.dispose()
              if current == heads:
                  print(f"schema migrated: alembic_version = {sorted(current)}", flush=True)
                  sys.exit(0)
              state = f"alembic_version = {sorted(current) or 'none (not migrated yet)'}"
          except Exception as exc:
              state = f"database not reachable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
          if state != last:
              print(state, flush=True)
              last = state
          if time.monotonic() >= deadline:
              sys.exit(
                  f"ERROR: the schema of {where} is not at Langflow's head revision {sorted(heads)} after "
                  f"{timeout:.0f}s ({state}). The IDE (or another Langflow of this version) runs the "
                  "migrations: check that it is deployed and healthy, or set runtime.waitForMigrations.enabled=false "
                  "to let the runtime migrate the database itself."
              )
          time.sleep(2)
  env:
    - name: HOME
      value: /tmp
    - name: WAIT_TIMEOUT_SECONDS
      value: {{ $w.timeoutSeconds | quote }}
    {{- include "langflow-common.connections.databaseEnv" . | nindent 4 }}
  resources:
    {{- include "langflow-common.resources" (dict "resources" .Values.resources "name" "runtime.resources") | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- include "langflow-common.databaseTLS.volumeMount" (dict "context" .) | nindent 4 }}
{{- end -}}
