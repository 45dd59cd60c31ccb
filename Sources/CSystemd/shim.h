// libsystemd: readiness notification, socket activation and the journal.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
