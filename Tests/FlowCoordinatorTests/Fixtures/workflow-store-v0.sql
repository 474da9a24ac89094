PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
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
);
INSERT INTO workflow VALUES('old-1','counted','running','{"value":"a"}',NULL,NULL,NULL,0,1790000000.0,1790000000.0,NULL);
INSERT INTO workflow VALUES('old-2','parking','parked','{}',NULL,NULL,'waiting for dead-letter replay: needs_a_fix (message old-2/needs_a_fix#0#1) failed: NotReady: the dependency is not configured',0,1790000005.0,1790000007.0,NULL);
INSERT INTO workflow VALUES('old-3','counted','completed','{"value":"z"}','{"first":"z","left":"z-left","right":"z-right"}',NULL,NULL,0,1790000008.0,1790000009.0,1790000009.0);
CREATE TABLE result_recipient (
    workflow_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    PRIMARY KEY (workflow_id, reply_to, correlation_id)
);
INSERT INTO result_recipient VALUES('old-1','starter','c-1');
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
INSERT INTO step VALUES('old-1/counted_echo#abc#1','old-1','counted_echo#abc#1','counted_echo','default-queue','{"value":"a"}','{"maximumResends":2,"startToCloseTimeout":[1,11553255926290448384],"onFinalFailure":"park"}','completed',1,1790000000.0,1790000001.0,1790000002.0,1,'{"value":"a"}',NULL);
INSERT INTO step VALUES('old-1/counted_echo#def#1','old-1','counted_echo#def#1','counted_echo','default-queue','{"value":"a-left"}','{"maximumResends":2,"onFinalFailure":"park","startToCloseTimeout":[1,11553255926290448384]}','scheduled',1,1790000000.0,1790000003.0,NULL,0,NULL,NULL);
INSERT INTO step VALUES('old-2/needs_a_fix#0#1','old-2','needs_a_fix#0#1','needs_a_fix','default-queue','{}','{"maximumResends":2,"onFinalFailure":"park"}','parked',1,1790000000.0,1790000006.0,1790000007.0,1,NULL,'{"message":"the dependency is not configured","type":"NotReady","retryable":false}');
CREATE TABLE timer (
    workflow_id TEXT NOT NULL,
    timer_key TEXT NOT NULL,
    fire_at REAL NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, timer_key)
);
INSERT INTO timer VALUES('old-1','sleep#3000ms#1',1790000007.0,0);
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    step_key TEXT,
    detail TEXT NOT NULL
);
INSERT INTO history VALUES(1,'old-1',1790000000.0,'workflow started',NULL,'counted with input {"value":"a"}');
INSERT INTO history VALUES(2,'old-1',1790000000.0,'activity scheduled','counted_echo#abc#1','counted_echo on default-queue');
INSERT INTO history VALUES(3,'old-1',1790000002.0,'activity completed','counted_echo#abc#1','attempt 1: {"value":"a"}');
INSERT INTO history VALUES(4,'old-1',1790000000.0,'activity scheduled','counted_echo#def#1','counted_echo on default-queue');
INSERT INTO history VALUES(5,'old-1',1790000004.0,'timer started','sleep#3000ms#1','fires at 2026-09-21T14:13:27Z');
INSERT INTO history VALUES(6,'old-2',1790000005.0,'workflow started',NULL,'parking with input {}');
INSERT INTO history VALUES(7,'old-2',1790000000.0,'activity scheduled','needs_a_fix#0#1','needs_a_fix on default-queue');
INSERT INTO history VALUES(8,'old-2',1790000007.0,'activity failed','needs_a_fix#0#1','attempt 1: NotReady: the dependency is not configured');
INSERT INTO history VALUES(9,'old-2',1790000007.0,'workflow parked','needs_a_fix#0#1','waiting for dead-letter replay: needs_a_fix (message old-2/needs_a_fix#0#1) failed: NotReady: the dependency is not configured');
INSERT INTO history VALUES(10,'old-3',1790000008.0,'workflow started',NULL,'counted with input {"value":"z"}');
INSERT INTO history VALUES(11,'old-3',1790000009.0,'workflow completed',NULL,'output {"first":"z","left":"z-left","right":"z-right"}');
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
INSERT INTO schedule VALUES('nightly','counted','{"value":"n"}',86400,NULL,1790086400.0,NULL,0);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('history',11);
CREATE INDEX workflow_status ON workflow(status, started_at);
CREATE INDEX step_workflow ON step(workflow_id);
CREATE INDEX history_workflow ON history(workflow_id, id);
COMMIT;
