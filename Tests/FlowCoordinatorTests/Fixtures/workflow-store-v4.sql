PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
INSERT INTO grdb_migrations VALUES('v1: workflows, steps, timers, history, schedules');
INSERT INTO grdb_migrations VALUES('v2: steps by workflow and status');
INSERT INTO grdb_migrations VALUES('v3: workflows in list order');
INSERT INTO grdb_migrations VALUES('v4: the trace a workflow belongs to');
CREATE TABLE workflow (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    parked_reason TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL
, "trace_context" TEXT);
INSERT INTO workflow VALUES('upgrade-completed','echo_chain','completed','{"steps":2,"text":"done"}','{"steps":2,"text":"done"}',NULL,NULL,0,1796610932.6998338699,1796610932.7183918953,1796610932.7183918953,NULL);
INSERT INTO workflow VALUES('upgrade-sleeping','echo_chain','running','{"pause_seconds":7200,"steps":3,"text":"sleeping"}',NULL,NULL,NULL,0,1796610932.7761106491,1796610932.7761106491,NULL,NULL);
INSERT INTO workflow VALUES('upgrade-parked','document_onboarding','parked','{"path":"no-such-document.txt"}',NULL,NULL,'waiting for dead-letter replay: process_document_upload (message upgrade-parked/process_document_upload#c00131dcacf9cda1#1) failed: DocumentNotFound: no readable file at ''no-such-document.txt'' in the data folder',0,1796610932.8284931182,1796610932.8380687236,NULL,NULL);
INSERT INTO workflow VALUES('upgrade-running','echo_chain','running','{"steps":2,"text":"running"}',NULL,NULL,NULL,0,1796610938.8865880966,1796610938.8865880966,NULL,NULL);
CREATE TABLE result_recipient (
    workflow_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    PRIMARY KEY (workflow_id, reply_to, correlation_id)
);
INSERT INTO result_recipient VALUES('upgrade-sleeping','flow.cli.replies.9844b3e0','upgrade-sleeping');
INSERT INTO result_recipient VALUES('upgrade-parked','flow.cli.replies.b3d1b117','upgrade-parked');
INSERT INTO result_recipient VALUES('upgrade-running','flow.cli.replies.bc12a040','upgrade-running');
CREATE TABLE step (
    message_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    activity TEXT NOT NULL,
    queue TEXT NOT NULL,
    input TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    sends INTEGER NOT NULL,
    scheduled_at REAL NOT NULL,
    sent_at REAL,
    last_heard_at REAL,
    attempt INTEGER NOT NULL,
    result TEXT,
    error TEXT
);
INSERT INTO step VALUES('upgrade-completed/echo#6e83948c8bb3a40b#1','upgrade-completed','echo#6e83948c8bb3a40b#1','echo','fixture14617.default-queue','{"step":1,"text":"done"}','{"maximum_resends":2,"on_final_failure":"park"}','completed',1,1796610932.7025794982,1796610932.7041726112,1796610932.7119631767,1,'{"step":1,"text":"done"}',NULL);
INSERT INTO step VALUES('upgrade-completed/echo#20e1832418dc6984#1','upgrade-completed','echo#20e1832418dc6984#1','echo','fixture14617.default-queue','{"step":2,"text":"done"}','{"maximum_resends":2,"on_final_failure":"park"}','completed',1,1796610932.7129878998,1796610932.7135002612,1796610932.7172937393,1,'{"step":2,"text":"done"}',NULL);
INSERT INTO step VALUES('upgrade-sleeping/echo#c533a7797e3d2986#1','upgrade-sleeping','echo#c533a7797e3d2986#1','echo','fixture14617.default-queue','{"step":1,"text":"sleeping"}','{"maximum_resends":2,"on_final_failure":"park"}','completed',1,1796610932.7772502899,1796610932.7777802943,1796610932.7815201282,1,'{"step":1,"text":"sleeping"}',NULL);
INSERT INTO step VALUES('upgrade-parked/process_document_upload#c00131dcacf9cda1#1','upgrade-parked','process_document_upload#c00131dcacf9cda1#1','process_document_upload','fixture14617.default-queue','{"path":"no-such-document.txt"}','{"maximum_resends":2,"on_final_failure":"park","start_to_close_timeout":[6,9319535557742690304]}','parked',1,1796610932.8299288749,1796610932.8311178684,1796610932.8380687236,1,NULL,'{"message":"no readable file at ''no-such-document.txt'' in the data folder","retryable":false,"type":"DocumentNotFound"}');
INSERT INTO step VALUES('upgrade-running/echo#cf32e43da42151c8#1','upgrade-running','echo#cf32e43da42151c8#1','echo','fixture14617.default-queue','{"step":1,"text":"running"}','{"maximum_resends":2,"on_final_failure":"park"}','scheduled',1,1796610938.8874268532,1796610938.8885838984,NULL,0,NULL,NULL);
CREATE TABLE timer (
    workflow_id TEXT NOT NULL,
    timer_key TEXT NOT NULL,
    fire_at REAL NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, timer_key)
);
INSERT INTO timer VALUES('upgrade-sleeping','sleep#7200000ms#1',1796618132.7822275162,0);
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    step_key TEXT,
    detail TEXT NOT NULL
);
INSERT INTO history VALUES(1,'upgrade-completed',1796610932.6998338699,'workflow started',NULL,'echo_chain with input {"steps":2,"text":"done"}');
INSERT INTO history VALUES(2,'upgrade-completed',1796610932.7025794982,'activity scheduled','echo#6e83948c8bb3a40b#1','echo on fixture14617.default-queue');
INSERT INTO history VALUES(3,'upgrade-completed',1796610932.7119631767,'activity completed','echo#6e83948c8bb3a40b#1','attempt 1: {"step":1,"text":"done"}');
INSERT INTO history VALUES(4,'upgrade-completed',1796610932.7129878998,'activity scheduled','echo#20e1832418dc6984#1','echo on fixture14617.default-queue');
INSERT INTO history VALUES(5,'upgrade-completed',1796610932.7172937393,'activity completed','echo#20e1832418dc6984#1','attempt 1: {"step":2,"text":"done"}');
INSERT INTO history VALUES(6,'upgrade-completed',1796610932.7183918953,'workflow completed',NULL,'output {"steps":2,"text":"done"}');
INSERT INTO history VALUES(7,'upgrade-sleeping',1796610932.7761106491,'workflow started',NULL,'echo_chain with input {"pause_seconds":7200,"steps":3,"text":"sleeping"}');
INSERT INTO history VALUES(8,'upgrade-sleeping',1796610932.7772502899,'activity scheduled','echo#c533a7797e3d2986#1','echo on fixture14617.default-queue');
INSERT INTO history VALUES(9,'upgrade-sleeping',1796610932.7815201282,'activity completed','echo#c533a7797e3d2986#1','attempt 1: {"step":1,"text":"sleeping"}');
INSERT INTO history VALUES(10,'upgrade-sleeping',1796610932.7822275161,'timer started','sleep#7200000ms#1','fires at 2026-12-07T04:35:32Z');
INSERT INTO history VALUES(11,'upgrade-parked',1796610932.8284931182,'workflow started',NULL,'document_onboarding with input {"path":"no-such-document.txt"}');
INSERT INTO history VALUES(12,'upgrade-parked',1796610932.8299288749,'activity scheduled','process_document_upload#c00131dcacf9cda1#1','process_document_upload on fixture14617.default-queue');
INSERT INTO history VALUES(13,'upgrade-parked',1796610932.8380687236,'activity failed','process_document_upload#c00131dcacf9cda1#1','attempt 1: DocumentNotFound: no readable file at ''no-such-document.txt'' in the data folder');
INSERT INTO history VALUES(14,'upgrade-parked',1796610932.8380687236,'workflow parked','process_document_upload#c00131dcacf9cda1#1','waiting for dead-letter replay: process_document_upload (message upgrade-parked/process_document_upload#c00131dcacf9cda1#1) failed: DocumentNotFound: no readable file at ''no-such-document.txt'' in the data folder');
INSERT INTO history VALUES(15,'upgrade-running',1796610938.8865880966,'workflow started',NULL,'echo_chain with input {"steps":2,"text":"running"}');
INSERT INTO history VALUES(16,'upgrade-running',1796610938.8874268532,'activity scheduled','echo#cf32e43da42151c8#1','echo on fixture14617.default-queue');
CREATE TABLE schedule (
    name TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    input TEXT NOT NULL,
    every_seconds INTEGER,
    cron TEXT,
    next_run_at REAL NOT NULL,
    last_run_at REAL,
    runs INTEGER NOT NULL DEFAULT 0
);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('history',16);
CREATE INDEX workflow_status ON workflow(status, started_at);
CREATE INDEX history_workflow ON history(workflow_id, id);
CREATE INDEX "step_workflow_status" ON "step"("workflow_id", "status");
CREATE INDEX "workflow_started" ON "workflow"("started_at", "id");
COMMIT;
