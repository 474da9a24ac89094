#ifndef CBARE_ROUND_TRIP_H
#define CBARE_ROUND_TRIP_H

#include <stddef.h>

/* Runs `count` request-reply round trips over rabbitmq-c alone, with the same shape as the
   Swift transport's RoundTripProbe: persistent requests published with confirms on one
   connection, answered on a second connection by a reply published with a confirm before
   the request is acknowledged, replies consumed and acknowledged, `window` requests in
   flight. A single-threaded poll loop over both sockets: the fastest honest C version.
   Returns 0 and the elapsed seconds, or -1 with a message in `error`. */
int CBareRoundTrip_run(const char *host, int port, const char *user, const char *password,
                       int count, int window, int body_size, double *seconds,
                       char *error, size_t error_size);

#endif
