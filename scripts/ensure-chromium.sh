#!/bin/sh
# The console's end-to-end tests drive Debian's chromium headless through
# playwright-core (which downloads no browser). Install it when missing;
# a no-op when it is there. MILLRACE_CHROMIUM names another binary.
set -eu
bin="${MILLRACE_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$bin" ]; then
	exit 0
fi
echo "chromium not found at $bin: installing Debian's chromium package"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
