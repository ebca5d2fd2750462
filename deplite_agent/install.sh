#!/bin/sh
# Installs the Deplite agent on this host, or upgrades it in place when run again. Served, filled in, by
# a Deplite server at /agent/install.sh:
#
#   curl -fsSL https://deplite.example.com/agent/install.sh | sh -s -- --agent-id <id>
#
# The agent's secret is read from the terminal (/dev/tty, not echoed) or from --secret-file: never from
# the command line or the environment, where shell history and process lists would keep it.
# POSIX sh: runs under dash, bash, busybox ash.
set -eu

# Filled in by the server that serves this script.
DEPLITE_SERVER='@DEPLITE_SERVER@'
AGENT_VERSION='@AGENT_VERSION@'
AGENT_WHEEL='@AGENT_WHEEL@'
AGENT_SHA256='@AGENT_SHA256@'

usage() {
	cat <<EOF
Installs deplite-agent $AGENT_VERSION from $DEPLITE_SERVER, or upgrades it in place.

  curl -fsSL $DEPLITE_SERVER/agent/install.sh | sh -s -- --agent-id <id> [options]

  --agent-id ID        the agent's id (Agents page); optional when upgrading an installed agent
  --secret-file FILE   read the agent's secret from FILE (default: asked on the terminal)
  --prefix DIR         where to install (default /opt/deplite-agent; a directory you can write
                       needs no root, e.g. --prefix "\$HOME/deplite-agent")
  --dir DIR            the agent's home, holding workflows/ and logs/ (default PREFIX/home)
  --env-file FILE      the settings file, mode 600 (default PREFIX/agent.env)
  --url URL            the server the agent talks to and downloads from (default $DEPLITE_SERVER)
  --python PATH        the Python (>= 3.9) to build the virtualenv with (default python3)
  --systemd            also write a systemd unit (as root; runs the agent as --user)
  --unit-file FILE     where to write it (default /etc/systemd/system/deplite-agent.service)
  --user NAME          the user the unit runs the agent as (default: who ran sudo, else you)
EOF
}

say() { printf '%s\n' "$*"; }
die() {
	printf 'deplite-agent install: %s\n' "$*" >&2
	exit 1
}
need_value() {
	[ "$2" -ge 2 ] || die "$1 needs a value"
}

agent_id= secret_file= prefix=/opt/deplite-agent dir= env_file= url=$DEPLITE_SERVER python=python3
systemd=no unit_file=/etc/systemd/system/deplite-agent.service run_user=
while [ $# -gt 0 ]; do
	case $1 in
	--agent-id) need_value "$1" $#; agent_id=$2; shift ;;
	--secret-file) need_value "$1" $#; secret_file=$2; shift ;;
	--prefix) need_value "$1" $#; prefix=$2; shift ;;
	--dir) need_value "$1" $#; dir=$2; shift ;;
	--env-file) need_value "$1" $#; env_file=$2; shift ;;
	--url) need_value "$1" $#; url=$2; shift ;;
	--python) need_value "$1" $#; python=$2; shift ;;
	--systemd) systemd=yes ;;
	--unit-file) need_value "$1" $#; unit_file=$2; shift ;;
	--user) need_value "$1" $#; run_user=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	--secret | --secret=*) die "the secret is never taken on the command line (shell history, process list): use --secret-file FILE, or type it when asked" ;;
	*) die "unknown option: $1 (--help lists them)" ;;
	esac
	shift
done

# Every value below ends up in a file that sh and systemd both read: plain characters only.
plain_path() {
	case $2 in
	/*) ;;
	*) die "$1 must be an absolute path: $2" ;;
	esac
	case $2 in
	*[!A-Za-z0-9._/@+=:,~-]*) die "$1 may hold only letters, digits and ._/@+=:,~- : $2" ;;
	esac
}
case $url in
http://* | https://*) ;;
*) die "--url must start with http:// or https://: $url" ;;
esac
case $url in
*[!A-Za-z0-9._/:@%?=\&+,~-]* | *"'"*) die "--url holds characters that cannot be written to the settings file: $url" ;;
esac
url=${url%/}
plain_path --prefix "$prefix"
prefix=${prefix%/}
env_file=${env_file:-$prefix/agent.env}
plain_path --env-file "$env_file"
if [ -z "$dir" ] && [ -f "$env_file" ]; then
	# An upgrade keeps the agent's home (its workflows and logs) where it was.
	dir=$(sed -n "s/^DEPLITE_AGENT_DIR='\(.*\)'\$/\1/p" "$env_file" | head -n 1)
fi
dir=${dir:-$prefix/home}
plain_path --dir "$dir"
venv=$prefix/venv
launcher=$prefix/bin/deplite-agent
if [ "$systemd" = yes ]; then
	plain_path --unit-file "$unit_file"
	unit_dir=$(dirname "$unit_file")
	mkdir -p "$unit_dir" 2>/dev/null && [ -w "$unit_dir" ] ||
		die "cannot write $unit_file: --systemd needs root (| sudo sh -s -- …) or a --unit-file you can write"
fi

# Before anything is asked: can this user write the prefix (or create it)? Nothing is created yet.
existing=$prefix
while [ ! -e "$existing" ]; do existing=$(dirname "$existing"); done
[ -d "$existing" ] && [ -w "$existing" ] ||
	die "cannot write $prefix: run it as root (| sudo sh -s -- …) or choose a --prefix you can write, e.g. --prefix \"\$HOME/deplite-agent\""

# --- Python ---------------------------------------------------------------------------------------------
command -v "$python" >/dev/null 2>&1 || die "Python 3.9 or newer is needed, and there is no $python (--python PATH)"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
	die "Python 3.9 or newer is needed; $python is $("$python" -V 2>&1)"

# --- the agent and its secret ------------------------------------------------------------------------------
# An installed agent is upgraded with the id and secret it has, unless another agent id is given.
env_value() {
	sed -n "s/^$1='\\(.*\\)'\$/\\1/p" "$env_file" 2>/dev/null | head -n 1
}
installed_id=
secret=
if [ -f "$env_file" ]; then
	installed_id=$(env_value DEPLITE_AGENT_ID)
	if [ -z "$agent_id" ] || [ "$agent_id" = "$installed_id" ]; then
		agent_id=$installed_id
		[ -n "$secret_file" ] || secret=$(env_value DEPLITE_AGENT_SECRET)
	fi
fi
[ -n "$agent_id" ] || die "--agent-id is required (the id the Agents page shows)"
case $agent_id in
*[!0-9A-Za-z-]*) die "--agent-id is the agent's id as the Agents page shows it, e.g. 3f1c6a4e-…: $agent_id" ;;
esac

if [ -n "$secret_file" ]; then
	[ -r "$secret_file" ] || die "cannot read --secret-file $secret_file"
	IFS= read -r secret <"$secret_file" || [ -n "$secret" ] || die "--secret-file $secret_file is empty"
elif [ -z "$secret" ]; then
	# `curl … | sh`: the script is this shell's stdin, so the secret is asked on the terminal itself.
	# In a subshell: a failed redirection of a special built-in ends a POSIX shell.
	if ! (: </dev/tty) 2>/dev/null; then
		die "no terminal to ask the secret on: pass --secret-file FILE (a file only you can read)"
	fi
	saved_tty=$(stty -g </dev/tty)
	trap 'stty "$saved_tty" </dev/tty 2>/dev/null; exit 130' INT TERM
	# Echo off before the prompt shows: a secret pasted the moment it appears is not echoed either.
	stty -echo </dev/tty
	printf 'Secret of agent %s (shown once when it was created; typing is hidden): ' "$agent_id" >/dev/tty
	IFS= read -r secret </dev/tty || true
	stty "$saved_tty" </dev/tty
	trap - INT TERM
	printf '\n' >/dev/tty
fi
secret=$(printf '%s' "$secret" | tr -d '\r')
[ -n "$secret" ] || die "no secret given"
case $secret in
*[!A-Za-z0-9._~+/=-]*) die "that is not an agent secret (they look like das_…)" ;;
esac

# --- download and verify -----------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/deplite-agent-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
fetch() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$2" "$1"
	else
		"$python" -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r, open(sys.argv[2], "wb") as f: shutil.copyfileobj(r, f)' "$1" "$2"
	fi
}
say "Downloading deplite-agent $AGENT_VERSION from $url"
fetch "$url/agent/$AGENT_WHEEL" "$work/$AGENT_WHEEL" || die "could not download $url/agent/$AGENT_WHEEL"
actual=$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$work/$AGENT_WHEEL")
if [ "$actual" != "$AGENT_SHA256" ]; then
	die "the downloaded $AGENT_WHEEL has sha256 $actual, but the server published $AGENT_SHA256: refusing to install it (nothing was changed)"
fi
say "sha256 verified: $AGENT_SHA256"

# --- install into its own virtualenv ----------------------------------------------------------------------
mkdir -p "$prefix"
before=
if [ -x "$venv/bin/deplite-agent" ]; then
	before=$("$venv/bin/deplite-agent" version 2>/dev/null || true)
fi
if [ ! -x "$venv/bin/python" ]; then
	"$python" -m venv "$venv" || die "could not create a virtualenv in $venv (Debian/Ubuntu: apt-get install python3-venv)"
fi
# The two dependencies (requests, PyYAML) come from the package index, as pip is configured on this host.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$work/$AGENT_WHEEL" ||
	die "pip could not install $AGENT_WHEEL into $venv"

# --- settings, a launcher, the service -----------------------------------------------------------------------
mkdir -p "$dir/workflows" "$(dirname "$env_file")" "$(dirname "$launcher")"
# Written by the shell's own printf (no process sees the secret), mode 600 from the start.
old_umask=$(umask)
umask 077
{
	printf "# Written by the Deplite agent installer. Read by systemd (EnvironmentFile) and by %s.\n" "$launcher"
	printf "DEPLITE_URL='%s'\n" "$url"
	printf "DEPLITE_AGENT_ID='%s'\n" "$agent_id"
	printf "DEPLITE_AGENT_SECRET='%s'\n" "$secret"
	printf "DEPLITE_AGENT_DIR='%s'\n" "$dir"
} >"$env_file.partial"
chmod 600 "$env_file.partial"
mv -f "$env_file.partial" "$env_file"
umask "$old_umask"

{
	printf '#!/bin/sh\n# Runs the Deplite agent with the settings in %s.\n' "$env_file"
	printf "set -a\n. '%s'\nset +a\nexec '%s' \"\$@\"\n" "$env_file" "$venv/bin/deplite-agent"
} >"$launcher"
chmod 755 "$launcher"

is_root=no
[ "$(id -u)" -eq 0 ] && is_root=yes
if [ -z "$run_user" ]; then
	run_user=${SUDO_USER:-$(id -un)}
fi
if [ "$is_root" = yes ] && [ "$run_user" != root ]; then
	id -u "$run_user" >/dev/null 2>&1 || die "no user $run_user (--user NAME)"
	# The agent writes logs/ in its home; the settings file stays root's (systemd reads it as root).
	chown -R "$run_user" "$dir"
fi

if [ "$systemd" = yes ]; then
	cat >"$unit_file" <<EOF
# Written by the Deplite agent installer ($AGENT_VERSION).
[Unit]
Description=Deplite agent
After=network-online.target
Wants=network-online.target

[Service]
User=$run_user
WorkingDirectory=$dir
EnvironmentFile=$env_file
ExecStart=$venv/bin/deplite-agent run
KillMode=mixed
# Let a running deployment finish.
TimeoutStopSec=15min
Restart=always
RestartSec=5
# 3: the server refused this agent as too old; restarting cannot help, running the installer again does.
RestartPreventExitStatus=3

[Install]
WantedBy=multi-user.target
EOF
	chmod 644 "$unit_file"
fi

# --- what was done --------------------------------------------------------------------------------------------
say ""
if [ -n "$before" ] && [ "$before" != "$AGENT_VERSION" ]; then
	say "Upgraded deplite-agent $before -> $AGENT_VERSION in $venv"
elif [ -n "$before" ]; then
	say "deplite-agent $AGENT_VERSION was already installed in $venv: up to date"
else
	say "Installed deplite-agent $AGENT_VERSION in $venv"
fi
say "Settings:   $env_file (mode 600: the agent's secret)"
say "Workflows:  $dir/workflows/ (one <name>.yaml per workflow a trigger names)"
say "Command:    $launcher (the agent with those settings)"
if [ "$systemd" = yes ]; then
	say "Service:    $unit_file (runs as $run_user)"
	say "            start it:  systemctl daemon-reload && systemctl enable --now deplite-agent"
	[ -z "$before" ] || say "            upgrading: systemctl restart deplite-agent"
else
	say "Run it:     $launcher run"
fi
say ""
say "Checking: $launcher check"
if "$launcher" check; then
	say "deplite-agent $AGENT_VERSION is installed and reaches $url."
else
	say "deplite-agent $AGENT_VERSION is installed, but the check above found problems (a workflow file yet to write,"
	say "or a wrong secret: run the installer again with the right one). Check again: $launcher check"
fi
