/* The server.address() example of Node's docs, in C:
 *
 *   const server = net.createServer((socket) => {
 *     socket.end('goodbye\n');
 *   }).on('error', (err) => { throw err; });
 *   server.listen(() => {
 *     console.log('opened server on', server.address());
 *   });
 *
 * Listens on a random free port and runs until killed. */
#include <cnet.h>

#include <stdio.h>
#include <stdlib.h>

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)srv, (void)ctx;
  cnet_socket_end(ev->connection, "goodbye\n", 8, NULL, NULL);
}

static void on_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv, (void)ctx;
  fprintf(stderr, "%s\n", ev->error->message);
  exit(1);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  cnet_address_t a;

  (void)ev, (void)ctx;
  if (cnet_server_address(srv, &a) != 0)
    return;
  printf("opened server on { address: '%s', family: '%s', port: %d }\n",
         a.address, cnet_family_name(a.family), a.port);
  fflush(stdout);
}

int main(void) {
  cnet_server_t *srv = cnet_create_server(NULL, NULL, on_connection, NULL);

  cnet_server_on(srv, CNET_EV_ERROR, on_error, NULL);
  cnet_server_listen(srv, &(cnet_listen_options_t){0}, on_listening, NULL);
  cnet_run();
  cnet_server_free(srv);
  return 0;
}
