/* The net.createServer() example of Node's docs, in C:
 *
 *   const server = net.createServer((c) => {
 *     console.log('client connected');
 *     c.on('end', () => console.log('client disconnected'));
 *     c.write('hello\r\n');
 *     c.pipe(c);
 *   });
 *   server.on('error', (err) => { throw err; });
 *   server.listen(8124, () => console.log('server bound'));
 *
 * Usage: echo-server [PORT|PATH] [--bench] [--reuse-port]. A number is a
 * TCP port (0: any free one, printed as "listening on PORT"), anything else
 * a Unix socket path; 8124 by default. --bench drops the greeting and the
 * printing: a plain pipe(c, c) echo. --reuse-port listens with SO_REUSEPORT
 * (Node's reusePort), so several echo-servers can share one TCP port and the
 * kernel spreads the connections among them. SIGINT or SIGTERM close the
 * server cleanly. */
#include <cnet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool bench;
static bool reuse_port;
static uv_signal_t sigint, sigterm;

static void on_client_end(cnet_socket_t *c, const cnet_event_t *ev,
                          void *ctx) {
  (void)c, (void)ev, (void)ctx;
  puts("client disconnected");
  fflush(stdout);
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *c = ev->connection;

  (void)srv, (void)ctx;
  if (!bench) {
    puts("client connected");
    fflush(stdout);
    cnet_socket_on(c, CNET_EV_END, on_client_end, NULL);
    cnet_socket_write(c, "hello\r\n", 7, NULL, NULL);
  }
  cnet_socket_pipe(c, c, NULL);
}

static void on_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv, (void)ctx;
  fprintf(stderr, "%s\n", ev->error->message); /* Node would throw */
  exit(1);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  cnet_address_t a;

  (void)ev;
  puts("server bound");
  if (ctx != NULL && cnet_server_address(srv, &a) == 0)
    printf("listening on %d\n", a.port);
  fflush(stdout);
}

static void on_signal(uv_signal_t *sig, int signum) {
  cnet_server_t *srv = sig->data;

  (void)signum;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  cnet_server_close(srv, NULL, NULL); /* unlinks a socket path */
}

static void watch_signals(uv_loop_t *loop, cnet_server_t *srv) {
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  sigint.data = sigterm.data = srv;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sigint); /* the server alone keeps us running */
  uv_unref((uv_handle_t *)&sigterm);
}

static int listen_on(cnet_server_t *srv, const char *where) {
  char *end;
  long port = strtol(where, &end, 10);

  if (*where != '\0' && *end == '\0') {
    cnet_listen_options_t opts = {.port = (int)port, .reuse_port = reuse_port};

    return cnet_server_listen(srv, &opts, on_listening, port == 0 ? srv : NULL);
  }
  return cnet_server_listen_path(srv, where, 0, on_listening, NULL);
}

int main(int argc, char **argv) {
  const char *where = "8124";
  cnet_server_t *srv;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bench") == 0)
      bench = true;
    else if (strcmp(argv[i], "--reuse-port") == 0)
      reuse_port = true;
    else
      where = argv[i];
  }
  srv = cnet_create_server(NULL, NULL, on_connection, NULL);
  cnet_server_on(srv, CNET_EV_ERROR, on_error, NULL);
  watch_signals(uv_default_loop(), srv);
  if (listen_on(srv, where) != 0) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    return 1;
  }
  cnet_run();
  cnet_server_free(srv);
  cnet_run(); /* let the last handles close */
  return uv_loop_close(uv_default_loop()) == 0 ? 0 : 1;
}
