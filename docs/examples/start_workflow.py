#!/usr/bin/env python3
"""Start an AntifragileFlow workflow from any machine with pika, and wait for its result.

    python3 start_workflow.py amqp://guest:guest@127.0.0.1:5672/%2F echo_chain '{"text": "hi"}'

It follows docs/protocol.md ("Workflows"): a `flow.workflow.start` command on the
`workflow-commands` queue, with a private reply queue that receives a `parked` notice
when a step waits in the dead-letter queue, and the result when the workflow ends.
Exit status: 0 completed, 1 failed or cancelled, 3 parked (and still waiting).
"""
import argparse
import json
import sys
import uuid

import pika


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("workflow")
    parser.add_argument("input", nargs="?", default="{}")
    parser.add_argument("--workflow-id", default=None)
    parser.add_argument("--queue", default="workflow-commands")
    parser.add_argument("--timeout", type=float, default=120)
    arguments = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(arguments.url))
    channel = connection.channel()
    channel.confirm_delivery()
    replies = channel.queue_declare(queue="", exclusive=True).method.queue
    workflow_id = arguments.workflow_id or "%s-%s" % (arguments.workflow, uuid.uuid4().hex[:8])
    channel.basic_publish(
        exchange="", routing_key=arguments.queue, mandatory=True,
        body=json.dumps({"workflow": arguments.workflow, "workflow_id": workflow_id,
                         "input": json.loads(arguments.input)}),
        properties=pika.BasicProperties(
            type="flow.workflow.start", message_id=workflow_id, correlation_id=workflow_id,
            reply_to=replies, content_type="application/json", delivery_mode=2))
    print("started", workflow_id, file=sys.stderr)

    status = 4
    for method, properties, body in channel.consume(replies, auto_ack=True, inactivity_timeout=arguments.timeout):
        if method is None:
            print("no result within %s s" % arguments.timeout, file=sys.stderr)
            break
        result = json.loads(body)
        if result["status"] == "parked":
            print("parked:", result["error"]["message"], file=sys.stderr)
            status = 3
            break
        print(json.dumps(result))
        status = 0 if result["status"] == "completed" else 1
        break
    connection.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
