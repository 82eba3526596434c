#!/bin/sh
# The console's end-to-end tests drive Debian's chromium headless through
# playwright-core (which downloads no browser). Install it when missing;
# a no-op when it is there. MILLRACE_CHROMIUM names another binary.
set -eu
bin="${MILLRACE_CHROMIUM:-/usr/bin/chromium}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
if [ ! -x "$bin" ]; then
	echo "chromium not found at $bin: installing Debian's chromium package"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi

# Module icons are emoji; without a colour emoji font the screenshots show
# empty boxes where a user's desktop shows the icon. Nice to have only.
if [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends fonts-noto-color-emoji ||
		echo "note: fonts-noto-color-emoji not installed; module icons show as boxes in the screenshots"
fi
