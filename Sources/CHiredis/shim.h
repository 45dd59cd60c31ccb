// hiredis: the Redis protocol (connection and reply parser), used synchronously off the event loops.
#include <hiredis/hiredis.h>
