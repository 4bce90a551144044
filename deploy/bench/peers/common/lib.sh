# Helpers sourced by the peers' start and stop scripts. Loopback only; every wait is bounded.

# wait_port PORT [seconds] : poll until something answers HTTP on 127.0.0.1:PORT
wait_port() {
  local port=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $port did not come up in ${secs}s" >&2; return 1
}

# port_free PORT : true when nothing listens on 127.0.0.1:PORT
port_free() { ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null; }

# start_bg PIDFILE LOGFILE CMD... : start CMD in background, record its PID
start_bg() {
  local pidfile=$1 logfile=$2; shift 2
  "$@" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
}

# stop_pidfile PIDFILE : TERM the recorded PID (and, if still alive after a grace
# period, its direct children by PID, then the PID itself with KILL). Never by name.
stop_pidfile() {
  local pidfile=$1 pid kids k i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kids=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    for k in $kids; do kill -0 "$k" 2>/dev/null && kill -TERM "$k" 2>/dev/null; done
    sleep 0.2
    for k in $kids $pid; do kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null; done
  fi
  rm -f "$pidfile"
}
