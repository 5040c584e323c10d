/* helper-channel: the other process of test-channel.c.
 *
 *   helper-channel MODE FD [ARGS...]
 *
 * FD is this process's end of a socketpair(AF_UNIX, SOCK_STREAM) made by the
 * test, inherited by number; the helper wraps it as a cnet channel
 * (cnet_socket_new with wrap_fd and channel) unless the mode says not to.
 * Every mode exits 0 when all went as expected and the test ended the
 * channel; anything unexpected is one line on stderr and a non-zero exit
 * (the test checks the status). A 10 s alarm bounds the helper even if the
 * test forgot it (the test also asks the kernel to kill it with SIGKILL
 * when the test process dies: PR_SET_PDEATHSIG).
 *
 * Modes:
 *   echo FD
 *       sends "hello from child", then sends back every message received,
 *       byte for byte (a message carrying a descriptor is an error).
 *   recv-socket FD N end|destroy
 *       expects one message "take" carrying a socket; reads N bytes from it,
 *       which must be the test pattern from its first byte (pattern_byte);
 *       writes "OK N\n" on it; then `end` ends it, `destroy` destroys it
 *       once the write is out (the sender kept a copy: no FIN from here);
 *       then sends "done N" on the channel.
 *   recv-server FD ID
 *       expects one message "serve" carrying a listening server; writes
 *       "ID\n" on each connection it accepts, then echoes it. Answers the
 *       message "count?" with "count N": cnet_server_get_connections().
 *   hold FD
 *       never reads the channel; waits to be killed.
 *   ipc-connect FD PATH PORT
 *       connects to the test's IPC server at PATH with the channel option
 *       and to 127.0.0.1:PORT over TCP; sends the TCP socket over the IPC
 *       channel with the message "tcp"; after the send callback (which must
 *       succeed), ends the IPC channel and sends "sent" on FD.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "cnet.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *MODE = "?";

#define DIE(...)                                                               \
  do {                                                                         \
    fprintf(stderr, "helper-channel %s (pid %ld): ", MODE, (long)getpid());    \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    fflush(stderr);                                                            \
    _exit(2);                                                                  \
  } while (0)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      DIE("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);               \
  } while (0)

/* The bytes a test client sends: byte i of the stream. Not a power-of-two
 * period, so a stream that starts late (bytes read by someone else) does
 * not match. Keep in step with test-channel.c. */
static unsigned char pattern_byte(size_t i) {
  return (unsigned char)(i % 251u);
}

static cnet_socket_t *CHANNEL;

static void send_text(const char *text) {
  CHECK(cnet_socket_send(CHANNEL, text, strlen(text), NULL, NULL, NULL) == 0);
}

static bool message_is(const cnet_event_t *ev, const char *text) {
  size_t n = strlen(text);

  return ev->message.len == n && memcmp(ev->message.data, text, n) == 0;
}

/* 'error' on anything: unexpected, except ECONNRESET / EPIPE on the
 * channel when the test goes away first (then the loop just ends). */
static void on_channel_error(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  (void)s;
  (void)ctx;
  DIE("channel error: %s", ev->error->message);
}

/* ---- echo ---------------------------------------------------------------- */

static void echo_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  CHECK(ev->message.socket == NULL && ev->message.server == NULL);
  CHECK(ev->message.len == 0 || ev->message.data != NULL);
  CHECK(cnet_socket_send(ch, ev->message.data, ev->message.len, NULL, NULL,
                         NULL) == 0);
}

/* ---- recv-socket ----------------------------------------------------------
 */

static struct {
  size_t want, got;
  bool destroy; /* the sender kept a copy: destroy, do not end */
  cnet_socket_t *sock;
} RS;

static void rs_wrote(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  char done[64];

  (void)ctx;
  if (err != NULL)
    DIE("write on the received socket: %s", err->message);
  if (RS.destroy)
    cnet_socket_destroy(s, NULL);
  snprintf(done, sizeof(done), "done %zu", RS.got);
  send_text(done);
}

static void rs_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  for (size_t i = 0; i < ev->data.len; i++, RS.got++)
    if ((unsigned char)ev->data.base[i] != pattern_byte(RS.got))
      DIE("byte %zu of the stream is 0x%02x, not 0x%02x: the stream did "
          "not start at its first byte",
          RS.got, (unsigned char)ev->data.base[i], pattern_byte(RS.got));
  if (RS.got > RS.want)
    DIE("read %zu bytes, more than the %zu sent", RS.got, RS.want);
  if (RS.got == RS.want) {
    char reply[64];
    int n = snprintf(reply, sizeof(reply), "OK %zu\n", RS.got);

    CHECK(cnet_socket_write(s, reply, (size_t)n, rs_wrote, NULL) >= 0);
    if (!RS.destroy)
      CHECK(cnet_socket_end(s, NULL, 0, NULL, NULL) == 0);
  }
}

static void rs_sock_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  if (ev->type == CNET_EV_ERROR)
    DIE("received socket: %s", ev->error->message);
  if (ev->type == CNET_EV_CLOSE)
    RS.sock = NULL;
}

static void rs_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  cnet_socket_t *s = ev->message.socket;

  (void)ch;
  (void)ctx;
  if (!message_is(ev, "take"))
    DIE("expected the message \"take\" (%zu bytes)", ev->message.len);
  CHECK(s != NULL && ev->message.server == NULL);
  CHECK(RS.sock == NULL); /* one socket only */
  RS.sock = s;
  CHECK(!cnet_socket_destroyed(s));
  CHECK(cnet_socket_bytes_read(s) == 0);
  CHECK(cnet_socket_on(s, CNET_EV_DATA, rs_data, NULL) == 0);
  CHECK(cnet_socket_on(s, CNET_EV_ERROR, rs_sock_event, NULL) == 0);
  CHECK(cnet_socket_on(s, CNET_EV_CLOSE, rs_sock_event, NULL) == 0);
  cnet_socket_resume(s); /* sent paused; whether it arrives so is open */
}

/* ---- recv-server ----------------------------------------------------------
 */

#define RV_MAX 256

static struct {
  const char *id;
  cnet_server_t *srv;
  cnet_socket_t *conns[RV_MAX];
  size_t accepted;
} RV;

static void rv_conn_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  if (ev->type == CNET_EV_CLOSE)
    for (size_t i = 0; i < RV_MAX; i++)
      if (RV.conns[i] == s)
        RV.conns[i] = NULL;
}

static void rv_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *s = ev->connection;
  char line[32];
  int n = snprintf(line, sizeof(line), "%s\n", RV.id);

  (void)srv;
  (void)ctx;
  CHECK(RV.accepted < RV_MAX);
  RV.conns[RV.accepted++] = s;
  CHECK(cnet_socket_on(s, CNET_EV_CLOSE, rv_conn_event, NULL) == 0);
  CHECK(cnet_socket_on(s, CNET_EV_ERROR, rv_conn_event, NULL) == 0);
  CHECK(cnet_socket_write(s, line, (size_t)n, NULL, NULL) >= 0);
  CHECK(cnet_socket_pipe(s, s, NULL) == 0);
}

static void rv_counted(cnet_server_t *srv, const cnet_error_t *err,
                       size_t count, void *ctx) {
  char text[64];

  (void)srv;
  (void)ctx;
  CHECK(err == NULL);
  snprintf(text, sizeof(text), "count %zu", count);
  send_text(text);
}

static void rv_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ch;
  (void)ctx;
  if (message_is(ev, "count?")) {
    CHECK(RV.srv != NULL);
    CHECK(ev->message.socket == NULL && ev->message.server == NULL);
    CHECK(cnet_server_get_connections(RV.srv, rv_counted, NULL) == 0);
    return;
  }
  if (!message_is(ev, "serve"))
    DIE("expected the message \"serve\" (%zu bytes)", ev->message.len);
  CHECK(ev->message.server != NULL && ev->message.socket == NULL);
  CHECK(RV.srv == NULL);
  RV.srv = ev->message.server;
  CHECK(cnet_server_listening(RV.srv));
  CHECK(cnet_server_on(RV.srv, CNET_EV_CONNECTION, rv_connection, NULL) == 0);
}

/* The test ended the channel: let everything go so the loop ends. */
static void rv_channel_close(cnet_socket_t *ch, const cnet_event_t *ev,
                             void *ctx) {
  (void)ch;
  (void)ev;
  (void)ctx;
  for (size_t i = 0; i < RV_MAX; i++)
    if (RV.conns[i] != NULL)
      cnet_socket_destroy(RV.conns[i], NULL);
  if (RV.srv != NULL)
    cnet_server_free(RV.srv);
  RV.srv = NULL;
}

/* ---- ipc-connect ----------------------------------------------------------
 */

static struct {
  cnet_socket_t *ipc, *tcp;
  int connected;
} IC;

static void ic_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ctx;
  if (err != NULL)
    DIE("sending the TCP socket: %s", err->message);
  CHECK(cnet_socket_end(ch, NULL, 0, NULL, NULL) == 0);
  send_text("sent");
}

static void ic_connected(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  if (++IC.connected == 2)
    CHECK(cnet_socket_send_socket(IC.ipc, "tcp", 3, IC.tcp, NULL, ic_sent,
                                  NULL) == 0);
}

static void ic_error(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  DIE("%s: %s", s == IC.ipc ? "ipc" : "tcp", ev->error->message);
}

/* ---- main -----------------------------------------------------------------
 */

static void on_alarm(int sig) {
  static const char msg[] = "helper-channel: timed out\n";
  ssize_t r;

  (void)sig;
  r = write(2, msg, sizeof(msg) - 1);
  (void)r;
  _exit(3);
}

int main(int argc, char **argv) {
  cnet_socket_options_t o = {.wrap_fd = true, .channel = true};
  char *end;

  signal(SIGALRM, on_alarm);
  alarm(10);
  if (argc < 3)
    DIE("usage: helper-channel MODE FD [ARGS...]");
  MODE = argv[1];
  o.fd = (int)strtol(argv[2], &end, 10);
  if (*end != '\0' || o.fd < 0)
    DIE("bad descriptor number %s", argv[2]);

  if (strcmp(MODE, "hold") == 0) {
    for (;;)
      pause(); /* never reads: the test kills us */
  }

  CHANNEL = cnet_socket_new(NULL, &o);
  if (CHANNEL == NULL)
    DIE("wrapping fd %d as a channel: %s", o.fd, cnet_last_error()->message);
  CHECK(cnet_socket_on(CHANNEL, CNET_EV_ERROR, on_channel_error, NULL) == 0);

  if (strcmp(MODE, "echo") == 0) {
    CHECK(cnet_socket_on(CHANNEL, CNET_EV_MESSAGE, echo_message, NULL) == 0);
    send_text("hello from child");
  } else if (strcmp(MODE, "recv-socket") == 0 && argc == 5) {
    RS.want = strtoul(argv[3], NULL, 10);
    RS.destroy = strcmp(argv[4], "destroy") == 0;
    CHECK(cnet_socket_on(CHANNEL, CNET_EV_MESSAGE, rs_message, NULL) == 0);
  } else if (strcmp(MODE, "recv-server") == 0 && argc == 4) {
    RV.id = argv[3];
    CHECK(cnet_socket_on(CHANNEL, CNET_EV_MESSAGE, rv_message, NULL) == 0);
    CHECK(cnet_socket_on(CHANNEL, CNET_EV_CLOSE, rv_channel_close, NULL) == 0);
  } else if (strcmp(MODE, "ipc-connect") == 0 && argc == 5) {
    cnet_connect_options_t ipc = {.path = argv[3], .channel = true};
    cnet_connect_options_t tcp = {.host = "127.0.0.1", .port = atoi(argv[4])};

    IC.ipc = cnet_create_connection(NULL, &ipc, ic_connected, NULL);
    CHECK(IC.ipc != NULL);
    IC.tcp = cnet_create_connection(NULL, &tcp, ic_connected, NULL);
    CHECK(IC.tcp != NULL);
    CHECK(cnet_socket_on(IC.ipc, CNET_EV_ERROR, ic_error, NULL) == 0);
    CHECK(cnet_socket_on(IC.tcp, CNET_EV_ERROR, ic_error, NULL) == 0);
  } else {
    DIE("unknown mode or wrong arguments");
  }

  CHECK(cnet_run() == 0);
  /* The channel was ended by the test and closed: everything is done. */
  CHECK(cnet_socket_destroyed(CHANNEL));
  cnet_socket_free(CHANNEL);
  if (RS.want != 0 && RS.got != RS.want)
    DIE("read %zu of %zu bytes", RS.got, RS.want);
  return 0;
}
