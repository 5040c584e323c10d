/* A prefork echo server: one primary process, N worker processes that all
 * accept on one listening socket -- what Node's cluster module does with
 * cluster.schedulingPolicy = cluster.SCHED_NONE:
 *
 *   cluster.schedulingPolicy = cluster.SCHED_NONE; // before any fork()
 *   if (cluster.isPrimary) {
 *     for (let i = 0; i < 2; i++) cluster.fork();
 *   } else {
 *     net.createServer((c) => c.pipe(c)).listen({ port: 8124 });
 *   }
 *
 * The primary listens, starts each worker over a socketpair() by fork() +
 * exec() of this same program (a fresh process with a fresh loop: a libuv
 * loop must never run on both sides of a fork), and sends the listening
 * server down that channel (cnet_socket_send_server). Each worker accepts
 * on the shared socket, echoes, and reports every connection it accepts to
 * the primary, which only supervises: it counts, reaps and stops workers.
 *
 * With --exclusive (Node's exclusive: true) nothing is shared: the primary
 * sends only the port number and each worker binds a socket of its own with
 * SO_REUSEPORT (the listen option reuse_port); the kernel then spreads the
 * connections across the workers' sockets. README.md, "Many cores",
 * compares the two with a third way, round-robin hand-off by the primary.
 *
 * Usage: prefork-echo [--workers N] [--port P] [--exclusive]
 * (2 workers, port 8124 on 127.0.0.1; port 0 is a random free one). It
 * prints "worker K pid P" for each worker, then "listening on PORT (...)"
 * once every worker accepts. SIGUSR1 prints the spread of connections
 * ("worker 1: 12 connections, worker 2: 9 connections"), as it is also
 * printed when a worker exits. SIGINT or SIGTERM stop the workers (each
 * closes its server gracefully), print the spread and exit 0. A worker
 * exits by itself when its channel closes, i.e. when the primary dies. */
#define _DEFAULT_SOURCE /* SO_REUSEPORT, even under -std=c11 */
#include <cnet.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOST "127.0.0.1"
#define MAX_WORKERS 64
#define STOP_GRACE_MS 3000 /* then the primary SIGKILLs what is left */
#define WORKER_GRACE_MS 1000

/* ---- a worker ----------------------------------------------------------- */

static cnet_socket_t *channel; /* to the primary */
/* A worker's server: the shared one, or its own (--exclusive). In the
 * primary: its copy of the shared server, until every worker has one. */
static cnet_server_t *server;

static void tell_primary(const char *what) {
  /* Fails (ERR_IPC_CHANNEL_CLOSED) only when the primary is gone. */
  cnet_socket_send(channel, what, strlen(what), NULL, NULL, NULL);
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)srv, (void)ctx;
  cnet_socket_pipe(ev->connection, ev->connection, NULL); /* c.pipe(c) */
  tell_primary("connection");
}

static void on_server_error(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)srv, (void)ctx;
  fprintf(stderr, "worker %d: %s\n", (int)getpid(), ev->error->message);
  exit(1); /* Node would throw; the primary sees us exit */
}

static void on_worker_listening(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  (void)srv, (void)ev, (void)ctx;
  tell_primary("ready");
}

/* The primary's one order: a server to accept on, or a port to bind. */
static void on_order(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  char text[32] = "";
  int p;

  (void)ch, (void)ctx;
  if (ev->message.len < sizeof(text)) /* bytes, not a C string */
    memcpy(text, ev->message.data, ev->message.len);
  if (ev->message.server != NULL) { /* shared: already listening, ours now */
    server = ev->message.server;
    cnet_server_on(server, CNET_EV_CONNECTION, on_connection, NULL);
    cnet_server_on(server, CNET_EV_ERROR, on_server_error, NULL);
    tell_primary("ready");
  } else if (sscanf(text, "port %d", &p) == 1) {
    cnet_listen_options_t o = {
        .host = HOST, .port = p, .reuse_port = true, .exclusive = true};

    server = cnet_create_server(NULL, NULL, on_connection, NULL);
    cnet_server_on(server, CNET_EV_ERROR, on_server_error, NULL);
    if (cnet_server_listen(server, &o, on_worker_listening, NULL) != 0) {
      fprintf(stderr, "worker: %s\n", cnet_last_error()->message);
      exit(1);
    }
  }
}

/* The primary stopped us, or died: finish what is open, then exit. */
static void on_primary_gone(cnet_socket_t *ch, const cnet_event_t *ev,
                            void *ctx) {
  (void)ch, (void)ev, (void)ctx;
  if (server != NULL)
    cnet_server_close_gracefully(server, WORKER_GRACE_MS, NULL, NULL);
}

static int worker(int fd) {
  cnet_socket_options_t o = {.wrap_fd = true, .fd = fd, .channel = true};

  /* Ctrl-C reaches the whole process group; the primary decides. */
  signal(SIGINT, SIG_IGN);
  channel = cnet_socket_new(NULL, &o);
  if (channel == NULL) {
    fprintf(stderr, "worker: fd %d: %s\n", fd, cnet_last_error()->message);
    return 1;
  }
  cnet_socket_on(channel, CNET_EV_MESSAGE, on_order, NULL);
  cnet_socket_on(channel, CNET_EV_CLOSE, on_primary_gone, NULL);
  cnet_run();
  cnet_server_free(server); /* NULL-safe */
  cnet_socket_free(channel);
  cnet_run(); /* let the last handles close */
  return uv_loop_close(uv_default_loop()) == 0 ? 0 : 1;
}

/* ---- the primary -------------------------------------------------------- */

typedef struct {
  int id;                 /* 1..N */
  pid_t pid;              /* 0 once reaped */
  cnet_socket_t *channel; /* NULL once closed */
  unsigned long connections;
  bool ready;
} worker_t;

static worker_t workers[MAX_WORKERS];
static int nworkers = 2, nlive, nready, nsent;
static int port = 8124;
static bool exclusive, stopping;
static int status;
static unsigned long early; /* connections the primary served itself */
static int reserved = -1;   /* --exclusive: holds the port */
static uv_signal_t sigint, sigterm, sigusr1, sigchld;
static uv_timer_t grace;

static void print_spread(void) {
  for (int i = 0; i < nworkers; i++)
    printf("%sworker %d: %lu connection%s", i > 0 ? ", " : "", workers[i].id,
           workers[i].connections, workers[i].connections == 1 ? "" : "s");
  if (early > 0)
    printf(", primary: %lu", early);
  printf("\n");
  fflush(stdout);
}

static void maybe_ready(void) {
  /* In shared mode, once the primary has let go of its copy too. */
  if (nready < nworkers || (!exclusive && server != NULL))
    return;
  printf("listening on %d (%d workers, %s)\n", port, nworkers,
         exclusive ? "a socket each, SO_REUSEPORT" : "one shared socket");
  fflush(stdout);
}

/* A worker's report: "ready" once, then "connection" per accept. */
static void on_report(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  worker_t *w = ctx;

  (void)ch;
  if (ev->message.len == 5 && memcmp(ev->message.data, "ready", 5) == 0) {
    w->ready = true;
    nready++;
    maybe_ready();
  } else {
    w->connections++;
  }
}

static void on_channel_close(cnet_socket_t *ch, const cnet_event_t *ev,
                             void *ctx) {
  worker_t *w = ctx;

  (void)ev;
  cnet_socket_free(ch); /* allowed from its own listener */
  w->channel = NULL;
}

static void finish(void) {
  print_spread();
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sigusr1, NULL);
  uv_close((uv_handle_t *)&sigchld, NULL);
  uv_close((uv_handle_t *)&grace, NULL);
}

static void on_grace_over(uv_timer_t *t) {
  (void)t;
  for (int i = 0; i < nworkers; i++)
    if (workers[i].pid > 0)
      kill(workers[i].pid, SIGKILL);
}

/* Stop: end every channel (a worker takes that as its cue to close), and
 * wait for the workers to exit; on_sigchld() finishes. */
static void stop(void) {
  if (stopping)
    return;
  stopping = true;
  cnet_server_free(server); /* still ours if a worker never took it */
  server = NULL;
  for (int i = 0; i < nworkers; i++)
    if (workers[i].channel != NULL)
      cnet_socket_end(workers[i].channel, NULL, 0, NULL, NULL);
  if (nlive == 0)
    finish();
  else
    uv_timer_start(&grace, on_grace_over, STOP_GRACE_MS, 0);
}

static void on_exited(worker_t *w, int wstatus) {
  printf("worker %d pid %d exited (%s %d)\n", w->id, (int)w->pid,
         WIFSIGNALED(wstatus) ? "signal" : "status",
         WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
  w->pid = 0;
  nlive--;
  if (stopping) {
    if (nlive == 0)
      finish();
  } else if (!w->ready || nlive == 0) { /* failed to start, or none left */
    status = 1;
    stop();
  } else {
    print_spread();
  }
}

static void on_sigchld(uv_signal_t *sig, int signum) {
  pid_t pid;
  int wstatus;

  (void)sig, (void)signum;
  while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
    for (int i = 0; i < nworkers; i++)
      if (workers[i].pid == pid)
        on_exited(&workers[i], wstatus);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig;
  if (signum == SIGUSR1)
    print_spread();
  else
    stop();
}

static void watch_signals(uv_loop_t *loop) {
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigusr1);
  uv_signal_init(loop, &sigchld);
  uv_timer_init(loop, &grace);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigusr1, on_signal, SIGUSR1);
  uv_signal_start(&sigchld, on_sigchld, SIGCHLD);
}

/* The shared server went to worker w (taken and acked), or could not. */
static void on_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  worker_t *w = ctx;

  (void)ch;
  if (err != NULL) {
    if (!stopping) { /* else the channel was ended on purpose */
      fprintf(stderr, "worker %d: %s\n", w->id, err->message);
      status = 1;
      stop();
    }
    return;
  }
  /* Each send kept the primary's copy open (keep_open) for the next one.
   * Once every worker has the socket, the primary closes its copy and
   * stops accepting: from here on it only supervises. */
  if (++nsent == nworkers && server != NULL) {
    cnet_server_free(server);
    server = NULL;
    maybe_ready();
  }
}

/* socketpair() + fork() + exec(): the child keeps its end of the pair (and
 * nothing else: every other descriptor here is close-on-exec) and runs
 * this program again with --worker-fd. /proc/self/exe is this binary
 * whatever argv[0] says. Between fork and exec only async-signal-safe
 * calls, and nothing of the loop. */
static int spawn(worker_t *w) {
  int sv[2], err;
  char fd[16];

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -errno;
  snprintf(fd, sizeof(fd), "%d", sv[1]);
  w->pid = fork();
  if (w->pid == 0) {
    fcntl(sv[1], F_SETFD, 0);
    execl("/proc/self/exe", "prefork-echo", "--worker-fd", fd, (char *)NULL);
    _exit(127);
  }
  err = errno;
  close(sv[1]);
  if (w->pid < 0) {
    close(sv[0]);
    return -err;
  }
  nlive++;
  printf("worker %d pid %d\n", w->id, (int)w->pid);
  fflush(stdout);
  return sv[0];
}

static int start_worker(worker_t *w) {
  cnet_socket_options_t o = {.wrap_fd = true, .channel = true};
  cnet_send_options_t keep = {.keep_open = true};
  char msg[32];

  if ((o.fd = spawn(w)) < 0)
    return o.fd;
  if ((w->channel = cnet_socket_new(NULL, &o)) == NULL) {
    close(o.fd);
    return cnet_last_error()->errnum;
  }
  cnet_socket_on(w->channel, CNET_EV_MESSAGE, on_report, w);
  cnet_socket_on(w->channel, CNET_EV_CLOSE, on_channel_close, w);
  if (!exclusive)
    return cnet_socket_send_server(w->channel, "serve", 5, server, &keep,
                                   on_sent, w);
  snprintf(msg, sizeof(msg), "port %d", port);
  return cnet_socket_send(w->channel, msg, strlen(msg), NULL, NULL, NULL);
}

static void start_workers(void) {
  for (int i = 0; i < nworkers && !stopping; i++) {
    int err;

    workers[i].id = i + 1;
    if ((err = start_worker(&workers[i])) < 0) {
      fprintf(stderr, "worker %d: %s\n", i + 1, cnet_strerror(err));
      status = 1;
      stop();
    }
  }
}

/* Until every worker has the shared socket, the primary's copy accepts
 * too: a client that comes that early is served, not dropped. */
static void on_early_connection(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  (void)srv, (void)ctx;
  early++;
  cnet_socket_pipe(ev->connection, ev->connection, NULL);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  cnet_address_t a;

  (void)ev, (void)ctx;
  if (cnet_server_address(srv, &a) == 0)
    port = a.port;
  start_workers();
}

static void on_listen_error(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)srv, (void)ctx;
  fprintf(stderr, "%s\n", ev->error->message);
  exit(1); /* no worker yet */
}

/* --exclusive: hold the port with a socket that is bound (SO_REUSEPORT,
 * so the workers may bind it too) but never listens. The kernel gives
 * connections only to listening sockets, so it takes none; it turns port 0
 * into one number for every worker and keeps the port ours while workers
 * come and go. */
static int reserve_port(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sa);
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("reserving the port");
    exit(1);
  }
  port = ntohs(sa.sin_port);
  return fd;
}

static int primary(void) {
  cnet_server_t *srv;
  cnet_listen_options_t o = {.host = HOST, .port = port};

  watch_signals(uv_default_loop()); /* SIGCHLD before the first fork */
  if (exclusive) {
    reserved = reserve_port();
    start_workers();
  } else {
    srv = server = cnet_create_server(NULL, NULL, on_early_connection, NULL);
    cnet_server_on(srv, CNET_EV_ERROR, on_listen_error, NULL);
    if (cnet_server_listen(srv, &o, on_listening, NULL) != 0) {
      fprintf(stderr, "%s\n", cnet_last_error()->message);
      return 1;
    }
  }
  cnet_run();
  if (reserved >= 0)
    close(reserved);
  return uv_loop_close(uv_default_loop()) == 0 ? status : 1;
}

/* A whole decimal number, or -1. */
static int number(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);

  return *s != '\0' && *end == '\0' && n >= 0 && n <= 65535 ? (int)n : -1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: prefork-echo [--workers N] [--port P] [--exclusive]\n");
  return 2;
}

int main(int argc, char **argv) {
  int worker_fd = -1;

  for (int i = 1; i < argc; i++) {
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;

    if (strcmp(argv[i], "--exclusive") == 0)
      exclusive = true;
    else if (next != NULL && strcmp(argv[i], "--workers") == 0)
      nworkers = number(argv[++i]);
    else if (next != NULL && strcmp(argv[i], "--port") == 0)
      port = number(argv[++i]);
    else if (next != NULL && strcmp(argv[i], "--worker-fd") == 0) {
      if ((worker_fd = number(argv[++i])) < 0)
        return usage();
    } else
      return usage();
  }
  if (worker_fd >= 0)
    return worker(worker_fd);
  if (nworkers < 1 || nworkers > MAX_WORKERS || port < 0 || port > 65535)
    return usage();
  return primary();
}
