/* systemd socket activation: serve on listening sockets someone else made.
 * Node can do this with server.listen({ fd: 3 }):
 *
 *   if (Number(process.env.LISTEN_PID) === process.pid &&
 *       Number(process.env.LISTEN_FDS) >= 1) {
 *     net.createServer((c) => c.pipe(c)).listen({ fd: 3 }, () =>
 *       console.log('listening on fd 3'));
 *   }
 *
 * The protocol (sd_listen_fds(3)): the activator opens and binds the
 * sockets, starts the service with them as descriptors 3, 4, ... and sets
 * LISTEN_FDS to their number and LISTEN_PID to the service's pid, so that
 * a child the service starts does not take the variables for its own.
 *
 * Usage: run it under an activator, for example
 *
 *   systemd-socket-activate -l 8080 ./socket-activation
 *
 * or from a systemd .socket unit. Each descriptor gets its own echo server
 * and a line "listening on fd N (port P)" -- "(path P)" for a Unix socket.
 * Started any other way it says how to run it and exits 2. SIGINT or
 * SIGTERM close the servers and exit 0. */
#include <cnet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_FDS_START 3 /* SD_LISTEN_FDS_START */
#define MAX_FDS 64

static cnet_server_t *servers[MAX_FDS];
static int nservers;
static int status;
static uv_signal_t sigint, sigterm;

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)srv, (void)ctx;
  cnet_socket_pipe(ev->connection, ev->connection, NULL);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  int fd = (int)(intptr_t)ctx;
  cnet_address_t a;

  (void)ev;
  if (cnet_server_address(srv, &a) != 0)
    printf("listening on fd %d\n", fd);
  else if (a.family != 0)
    printf("listening on fd %d (port %d)\n", fd, a.port);
  else if (a.address_len > 0 && a.address[0] == '\0') /* abstract name */
    printf("listening on fd %d (path @%.*s)\n", fd, (int)a.address_len - 1,
           a.address + 1);
  else
    printf("listening on fd %d (path %.*s)\n", fd, (int)a.address_len,
           a.address);
  fflush(stdout);
}

static void on_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  fprintf(stderr, "fd %d: %s\n", (int)(intptr_t)ctx, ev->error->message);
  status = 1;
  cnet_server_close(srv, NULL, NULL); /* the others keep serving */
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig, (void)signum;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  for (int i = 0; i < nservers; i++)
    cnet_server_close(servers[i], NULL, NULL);
}

static void watch_signals(uv_loop_t *loop) {
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sigint); /* the servers alone keep us running */
  uv_unref((uv_handle_t *)&sigterm);
}

/* sd_listen_fds(): how many descriptors were passed to this process, 0 if
 * none (or the variables are for another process). */
static int listen_fds(void) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  char *end;
  long n;

  if (pid == NULL || fds == NULL)
    return 0;
  if (strtol(pid, &end, 10) != (long)getpid() || *pid == '\0' || *end != '\0')
    return 0;
  n = strtol(fds, &end, 10);
  if (*fds == '\0' || *end != '\0' || n < 1)
    return 0;
  /* Children we might start must not inherit them (sd_listen_fds(1)). */
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  return n > MAX_FDS ? MAX_FDS : (int)n;
}

static int serve(int fd) {
  cnet_server_t *srv;
  void *ctx = (void *)(intptr_t)fd;

  srv = cnet_create_server(NULL, NULL, on_connection, NULL);
  if (srv == NULL)
    return -1;
  servers[nservers++] = srv;
  cnet_server_on(srv, CNET_EV_ERROR, on_error, ctx);
  return cnet_server_listen_fd(srv, fd, 0, on_listening, ctx);
}

int main(int argc, char **argv) {
  int n = listen_fds();

  (void)argc;
  if (n == 0) {
    fprintf(stderr,
            "%s: no sockets were passed to this process (LISTEN_FDS and\n"
            "LISTEN_PID are not set for it). Run it under a socket "
            "activator, e.g.\n\n"
            "  systemd-socket-activate -l 8080 %s\n\n"
            "or from a systemd .socket unit.\n",
            argv[0], argv[0]);
    return 2;
  }
  watch_signals(uv_default_loop());
  for (int i = 0; i < n; i++) {
    if (serve(LISTEN_FDS_START + i) != 0) {
      fprintf(stderr, "fd %d: %s\n", LISTEN_FDS_START + i,
              cnet_last_error()->message);
      status = 1;
    }
  }
  cnet_run();
  for (int i = 0; i < nservers; i++)
    cnet_server_free(servers[i]);
  if (!uv_is_closing((uv_handle_t *)&sigint)) {
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
  }
  cnet_run(); /* let the last handles close */
  return uv_loop_close(uv_default_loop()) == 0 ? status : 1;
}
