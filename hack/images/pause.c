/* Minimal pod-sandbox "pause" process for the local cluster.
 * PID 1 of every pod sandbox: it holds the pod's namespaces open, reaps any
 * zombie re-parented to it, and exits cleanly on SIGTERM/SIGINT.
 * Built statically (gcc -static -Os) so the image can be FROM scratch. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
