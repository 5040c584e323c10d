/* The EADDRINUSE example of Node's docs (server.listen()), in C:
 *
 *   server.on('error', (e) => {
 *     if (e.code === 'EADDRINUSE') {
 *       console.error('Address in use, retrying...');
 *       setTimeout(() => {
 *         server.close();
 *         server.listen(PORT, HOST);
 *       }, 1000);
 *     }
 *   });
 *
 * Usage: listen-retry PORT [HOST]. HOST is 127.0.0.1 by default. While the
 * address is taken it prints "Address in use, retrying..." (to stderr, as
 * console.error) and tries again on the same server object; once it gets
 * the port it prints "listening on PORT" and echoes back whatever a client
 * sends. CNET_RETRY_MS overrides the 1000 ms between tries. SIGINT or
 * SIGTERM close the server and exit 0. */
#include <cnet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *host = "127.0.0.1";
static int port;
static uint64_t retry_ms = 1000;
static int status;
static uv_timer_t retry;
static uv_signal_t sigint, sigterm;

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)srv, (void)ctx;
  cnet_socket_pipe(ev->connection, ev->connection, NULL);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  cnet_address_t a;

  (void)ev, (void)ctx;
  if (cnet_server_address(srv, &a) == 0)
    printf("listening on %d\n", a.port);
  fflush(stdout);
}

/* Stop everything that keeps the loop alive; main() then frees the server. */
static void shut_down(cnet_server_t *srv) {
  if (!uv_is_closing((uv_handle_t *)&retry)) {
    uv_close((uv_handle_t *)&retry, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
  }
  cnet_server_close(srv, NULL, NULL);
}

/* The setTimeout() callback: close() (harmless on a server that is not
 * listening) and listen() again on the same object. The 'listening'
 * listener was added once with cnet_server_on(): passing a callback to
 * every listen() would add one more once('listening') per try, as in
 * Node, and print the line once per failed try. */
static void listen_again(uv_timer_t *t) {
  cnet_server_t *srv = t->data;

  cnet_server_close(srv, NULL, NULL);
  if (cnet_server_listen_port(srv, port, host, 0, NULL, NULL) != 0) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    status = 1;
    shut_down(srv);
  }
}

static void on_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  if (ev->error->errnum == UV_EADDRINUSE) {
    fprintf(stderr, "Address in use, retrying...\n");
    uv_timer_start(&retry, listen_again, retry_ms, 0);
    return;
  }
  fprintf(stderr, "%s\n", ev->error->message); /* Node would throw */
  status = 1;
  shut_down(srv);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  shut_down(sig->data);
}

static void watch_signals(uv_loop_t *loop, cnet_server_t *srv) {
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  sigint.data = sigterm.data = srv;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sigint); /* the server or the timer keep us */
  uv_unref((uv_handle_t *)&sigterm);
}

int main(int argc, char **argv) {
  const char *ms = getenv("CNET_RETRY_MS");
  cnet_server_t *srv;
  char *end;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: listen-retry PORT [HOST]\n");
    return 2;
  }
  port = (int)strtol(argv[1], &end, 10);
  if (*argv[1] == '\0' || *end != '\0') {
    fprintf(stderr, "listen-retry: PORT must be a number: %s\n", argv[1]);
    return 2;
  }
  if (argc == 3)
    host = argv[2];
  if (ms != NULL && *ms != '\0')
    retry_ms = strtoull(ms, NULL, 10);

  srv = cnet_create_server(NULL, NULL, on_connection, NULL);
  if (srv == NULL) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    return 1;
  }
  cnet_server_on(srv, CNET_EV_LISTENING, on_listening, NULL);
  cnet_server_on(srv, CNET_EV_ERROR, on_error, NULL);
  uv_timer_init(uv_default_loop(), &retry);
  retry.data = srv;
  watch_signals(uv_default_loop(), srv);
  if (cnet_server_listen_port(srv, port, host, 0, NULL, NULL) != 0) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    status = 1;
    shut_down(srv);
  }
  cnet_run();
  cnet_server_free(srv);
  cnet_run(); /* let the last handles close */
  return uv_loop_close(uv_default_loop()) == 0 ? status : 1;
}
