# Sourced by .ci/run and the launcher scripts: selects a JDK 25 for Maven and java.
# `java` on PATH may be older (17 on these machines); Temurin 25 lives under /usr/lib/jvm.
jdk25_ok() { [ -x "$1/bin/java" ] && "$1/bin/java" -version 2>&1 | grep -qE 'version "25([."]|$)'; }
if [ -n "${JAVA_HOME:-}" ] && jdk25_ok "$JAVA_HOME"; then
  :
else
  JAVA_HOME=""
  for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25* /usr/lib/jvm/java-25* /usr/lib/jvm/jdk-25*; do
    if jdk25_ok "$candidate"; then JAVA_HOME="$candidate"; break; fi
  done
  if [ -z "$JAVA_HOME" ]; then
    echo "error: JDK 25 not found. Install a JDK 25 (e.g. Temurin 25 under /usr/lib/jvm) or set JAVA_HOME to one." >&2
    return 1 2>/dev/null || exit 1
  fi
fi
export JAVA_HOME
export PATH="$JAVA_HOME/bin:$PATH"
