#!/usr/bin/env python3
"""Send a signal to an AntifragileFlow workflow from any machine with pika.

    python3 signal_workflow.py amqp://guest:guest@127.0.0.1:5672/%2F WORKFLOW_ID approve_training '{"approver": "ada"}'

It follows docs/protocol.md ("Workflows"): a `flow.workflow.signal` command on the
`workflow-commands` queue. The coordinator records the signal in the workflow's journal
before it answers; the signal id (here the message id) makes a signal sent again count
once, so a sender that is unsure may send the same message again. With --start WORKFLOW,
a workflow that does not exist is started first (signal-with-start).
Exit status: 0 recorded, 1 refused (the answer says why), 4 no answer.
"""
import argparse
import json
import sys
import uuid

import pika


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("workflow_id")
    parser.add_argument("signal")
    parser.add_argument("input", nargs="?", default="{}")
    parser.add_argument("--signal-id", default=None)
    parser.add_argument("--start", default=None, help="start this workflow first when none has the id")
    parser.add_argument("--start-input", default="{}")
    parser.add_argument("--queue", default="workflow-commands")
    parser.add_argument("--timeout", type=float, default=60)
    arguments = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(arguments.url))
    channel = connection.channel()
    channel.confirm_delivery()
    replies = channel.queue_declare(queue="", exclusive=True).method.queue
    signal_id = arguments.signal_id or uuid.uuid4().hex
    body = {"workflow_id": arguments.workflow_id, "name": arguments.signal, "input": json.loads(arguments.input)}
    if arguments.start:
        body["start_workflow"] = arguments.start
        body["start_input"] = json.loads(arguments.start_input)
    channel.basic_publish(
        exchange="", routing_key=arguments.queue, mandatory=True, body=json.dumps(body),
        properties=pika.BasicProperties(
            type="flow.workflow.signal", message_id=signal_id, correlation_id=signal_id,
            reply_to=replies, content_type="application/json", delivery_mode=2))

    status = 4
    for method, properties, answer in channel.consume(replies, auto_ack=True, inactivity_timeout=arguments.timeout):
        if method is None:
            print("no answer within %s s: is the coordinator running?" % arguments.timeout, file=sys.stderr)
            break
        answer = json.loads(answer)
        print(json.dumps(answer))
        status = 0 if answer["accepted"] else 1
        break
    connection.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
