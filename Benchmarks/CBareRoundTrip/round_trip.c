#include "CBareRoundTrip.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { PUBLISH_CHANNEL = 1, CONSUME_CHANNEL = 2 };

typedef struct {
    amqp_connection_state_t conn;
    uint64_t next_sequence;
    uint64_t confirmed;
    /* A delivery whose header and body frames are still arriving. */
    int receiving;
    uint64_t delivery_tag;
    size_t expected;
    size_t received;
    char correlation_id[32];
} side_t;

typedef struct {
    uint64_t sequence;
    uint64_t delivery_tag;
} pending_ack_t;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(char *error, size_t size, const char *what, amqp_rpc_reply_t reply) {
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(error, size, "%s: %s", what, amqp_error_string2(reply.library_error));
    } else {
        snprintf(error, size, "%s: broker error (reply type %d)", what, (int)reply.reply_type);
    }
    return -1;
}

static int open_side(side_t *side, const char *host, int port, const char *user, const char *password,
                     int window, char *error, size_t size) {
    memset(side, 0, sizeof(*side));
    side->conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(side->conn);
    if (!socket || amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) {
        snprintf(error, size, "cannot connect to %s:%d", host, port);
        return -1;
    }
    amqp_rpc_reply_t reply = amqp_login(side->conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, password);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return fail(error, size, "login", reply);
    amqp_channel_open(side->conn, PUBLISH_CHANNEL);
    amqp_confirm_select(side->conn, PUBLISH_CHANNEL);
    amqp_channel_open(side->conn, CONSUME_CHANNEL);
    amqp_basic_qos(side->conn, CONSUME_CHANNEL, 0, (uint16_t)window, 0);
    reply = amqp_get_rpc_reply(side->conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return fail(error, size, "channel setup", reply);
    side->next_sequence = 1;
    return 0;
}

static int publish(side_t *side, const char *queue, const char *reply_to, const char *correlation_id,
                   amqp_bytes_t body) {
    amqp_basic_properties_t properties;
    memset(&properties, 0, sizeof(properties));
    properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    properties.delivery_mode = 2;
    properties.correlation_id = amqp_cstring_bytes(correlation_id);
    if (reply_to) {
        properties._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        properties.reply_to = amqp_cstring_bytes(reply_to);
    }
    int status = amqp_basic_publish(side->conn, PUBLISH_CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(queue), 1, 0,
                                    &properties, body);
    side->next_sequence++;
    return status;
}

/* Reads one available frame; returns 1 when a delivery completed, 0 otherwise, -1 on error,
   -2 when no frame was available. Confirms are counted in side->confirmed. */
static int read_frame(side_t *side, uint64_t *confirm_tag, int *confirm_multiple) {
    amqp_frame_t frame;
    struct timeval zero = {0, 0};
    int status = amqp_simple_wait_frame_noblock(side->conn, &frame, &zero);
    if (status == AMQP_STATUS_TIMEOUT) return -2;
    if (status != AMQP_STATUS_OK) return -1;
    *confirm_tag = 0;
    if (frame.frame_type == AMQP_FRAME_METHOD) {
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            *confirm_tag = ack->delivery_tag;
            *confirm_multiple = ack->multiple;
        } else if (frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
            amqp_basic_deliver_t *deliver = frame.payload.method.decoded;
            side->receiving = 1;
            side->delivery_tag = deliver->delivery_tag;
            side->received = 0;
        } else if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            return -1;
        }
        return 0;
    }
    if (frame.frame_type == AMQP_FRAME_HEADER && side->receiving) {
        amqp_basic_properties_t *properties = frame.payload.properties.decoded;
        size_t length = properties->correlation_id.len < sizeof(side->correlation_id) - 1
                            ? properties->correlation_id.len : sizeof(side->correlation_id) - 1;
        memcpy(side->correlation_id, properties->correlation_id.bytes, length);
        side->correlation_id[length] = 0;
        side->expected = (size_t)frame.payload.properties.body_size;
        if (side->expected == 0) {
            side->receiving = 0;
            return 1;
        }
        return 0;
    }
    if (frame.frame_type == AMQP_FRAME_BODY && side->receiving) {
        side->received += frame.payload.body_fragment.len;
        if (side->received >= side->expected) {
            side->receiving = 0;
            return 1;
        }
    }
    return 0;
}

static int has_buffered(side_t *side) {
    return amqp_frames_enqueued(side->conn) || amqp_data_in_buffer(side->conn);
}

int CBareRoundTrip_run(const char *host, int port, const char *user, const char *password,
                       int count, int window, int body_size, double *seconds,
                       char *error, size_t error_size) {
    side_t requester, responder;
    if (open_side(&requester, host, port, user, password, window, error, error_size) != 0) return -1;
    if (open_side(&responder, host, port, user, password, window, error, error_size) != 0) return -1;

    char request_queue[64], reply_queue[64];
    snprintf(request_queue, sizeof(request_queue), "bench.bare.%d.requests", (int)getpid());
    snprintf(reply_queue, sizeof(reply_queue), "bench.bare.%d.replies", (int)getpid());
    amqp_table_entry_t expires;
    expires.key = amqp_cstring_bytes("x-expires");
    expires.value.kind = AMQP_FIELD_KIND_I32;
    expires.value.value.i32 = 60000;
    amqp_table_t arguments = {1, &expires};
    amqp_queue_declare(requester.conn, PUBLISH_CHANNEL, amqp_cstring_bytes(request_queue), 0, 1, 0, 0, arguments);
    amqp_queue_declare(requester.conn, PUBLISH_CHANNEL, amqp_cstring_bytes(reply_queue), 0, 1, 0, 0, arguments);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(requester.conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return fail(error, error_size, "declare", reply);
    amqp_basic_consume(responder.conn, CONSUME_CHANNEL, amqp_cstring_bytes(request_queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    amqp_basic_consume(requester.conn, CONSUME_CHANNEL, amqp_cstring_bytes(reply_queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);

    char *payload = malloc((size_t)body_size);
    memset(payload, 'x', (size_t)body_size);
    amqp_bytes_t body = {(size_t)body_size, payload};
    /* Replies waiting for their confirm before the responder acknowledges the request. */
    pending_ack_t *pending = calloc((size_t)window * 2 + 16, sizeof(pending_ack_t));
    size_t pending_capacity = (size_t)window * 2 + 16, pending_head = 0, pending_count = 0;

    int sent = 0, answered = 0;
    char correlation[32];
    double start = now_seconds();
    for (; sent < count && sent < window; sent++) {
        snprintf(correlation, sizeof(correlation), "%d", sent);
        if (publish(&requester, request_queue, reply_queue, correlation, body) != AMQP_STATUS_OK) goto io_error;
    }
    while (answered < count || requester.confirmed < (uint64_t)count) {
        int progressed = 0;
        for (;;) {
            uint64_t tag; int multiple = 0;
            int result = read_frame(&responder, &tag, &multiple);
            if (result == -2) break;
            if (result == -1) goto io_error;
            progressed = 1;
            if (result == 1) {
                if (publish(&responder, reply_queue, NULL, responder.correlation_id, body) != AMQP_STATUS_OK) goto io_error;
                size_t slot = (pending_head + pending_count) % pending_capacity;
                pending[slot].sequence = responder.next_sequence - 1;
                pending[slot].delivery_tag = responder.delivery_tag;
                pending_count++;
            }
            if (tag) {
                while (pending_count > 0 && (pending[pending_head].sequence == tag ||
                                             (multiple && pending[pending_head].sequence <= tag))) {
                    amqp_basic_ack(responder.conn, CONSUME_CHANNEL, pending[pending_head].delivery_tag, 0);
                    pending_head = (pending_head + 1) % pending_capacity;
                    pending_count--;
                }
            }
        }
        for (;;) {
            uint64_t tag; int multiple = 0;
            int result = read_frame(&requester, &tag, &multiple);
            if (result == -2) break;
            if (result == -1) goto io_error;
            progressed = 1;
            if (tag) requester.confirmed = multiple || tag > requester.confirmed ? tag : requester.confirmed;
            if (result == 1) {
                amqp_basic_ack(requester.conn, CONSUME_CHANNEL, requester.delivery_tag, 0);
                answered++;
                if (sent < count) {
                    snprintf(correlation, sizeof(correlation), "%d", sent++);
                    if (publish(&requester, request_queue, reply_queue, correlation, body) != AMQP_STATUS_OK) goto io_error;
                }
            }
        }
        amqp_maybe_release_buffers(requester.conn);
        amqp_maybe_release_buffers(responder.conn);
        if (!progressed && !has_buffered(&requester) && !has_buffered(&responder)) {
            struct pollfd descriptors[2] = {
                {amqp_get_sockfd(requester.conn), POLLIN, 0},
                {amqp_get_sockfd(responder.conn), POLLIN, 0},
            };
            poll(descriptors, 2, 1000);
        }
    }
    *seconds = now_seconds() - start;

    amqp_queue_delete(requester.conn, PUBLISH_CHANNEL, amqp_cstring_bytes(request_queue), 0, 0);
    amqp_queue_delete(requester.conn, PUBLISH_CHANNEL, amqp_cstring_bytes(reply_queue), 0, 0);
    amqp_connection_close(requester.conn, AMQP_REPLY_SUCCESS);
    amqp_connection_close(responder.conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(requester.conn);
    amqp_destroy_connection(responder.conn);
    free(payload);
    free(pending);
    return 0;

io_error:
    snprintf(error, error_size, "connection failed during the round trips");
    free(payload);
    free(pending);
    return -1;
}
