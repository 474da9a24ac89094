#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <poll.h>
#include <sys/eventfd.h>

/* Swift cannot call C variadic functions, so amqp_login gets a typed wrapper. */
static inline amqp_rpc_reply_t CRabbitMQ_login(amqp_connection_state_t state,
                                               const char *vhost,
                                               int channel_max,
                                               int frame_max,
                                               int heartbeat,
                                               const char *user,
                                               const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat,
                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/* Same as CRabbitMQ_login, with client properties (connection name, product)
   shown by the broker in `rabbitmqctl list_connections client_properties`. */
static inline amqp_rpc_reply_t CRabbitMQ_login_with_properties(amqp_connection_state_t state,
                                                               const char *vhost,
                                                               int channel_max,
                                                               int frame_max,
                                                               int heartbeat,
                                                               const amqp_table_t *properties,
                                                               const char *user,
                                                               const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat,
                                      properties, AMQP_SASL_METHOD_PLAIN, user, password);
}

/* Method ids and property flags are cast expressions in amqp_framing.h, which Swift does
   not import; these constants carry the same values. */
static const amqp_method_number_t CRabbitMQ_CONNECTION_CLOSE_METHOD = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t CRabbitMQ_CONNECTION_CLOSE_OK_METHOD = AMQP_CONNECTION_CLOSE_OK_METHOD;
static const amqp_method_number_t CRabbitMQ_CONNECTION_BLOCKED_METHOD = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t CRabbitMQ_CONNECTION_UNBLOCKED_METHOD = AMQP_CONNECTION_UNBLOCKED_METHOD;
static const amqp_method_number_t CRabbitMQ_CHANNEL_CLOSE_METHOD = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t CRabbitMQ_CHANNEL_CLOSE_OK_METHOD = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const amqp_method_number_t CRabbitMQ_BASIC_ACK_METHOD = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t CRabbitMQ_BASIC_NACK_METHOD = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t CRabbitMQ_BASIC_RETURN_METHOD = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t CRabbitMQ_BASIC_DELIVER_METHOD = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t CRabbitMQ_BASIC_CANCEL_METHOD = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t CRabbitMQ_BASIC_CANCEL_OK_METHOD = AMQP_BASIC_CANCEL_OK_METHOD;

static const amqp_flags_t CRabbitMQ_BASIC_CONTENT_TYPE_FLAG = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_CONTENT_ENCODING_FLAG = AMQP_BASIC_CONTENT_ENCODING_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_HEADERS_FLAG = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_DELIVERY_MODE_FLAG = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_PRIORITY_FLAG = AMQP_BASIC_PRIORITY_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_CORRELATION_ID_FLAG = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_REPLY_TO_FLAG = AMQP_BASIC_REPLY_TO_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_EXPIRATION_FLAG = AMQP_BASIC_EXPIRATION_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_MESSAGE_ID_FLAG = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_TIMESTAMP_FLAG = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_TYPE_FLAG = AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_USER_ID_FLAG = AMQP_BASIC_USER_ID_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_APP_ID_FLAG = AMQP_BASIC_APP_ID_FLAG;

#endif
