# Offline stand-in for the get-pip bootstrap script that ansible-test downloads
# before it can create its sanity and units virtualenvs.
#
# ansible-test runs ~/.ansible/test/cache/get_pip_<version>.py with pip's
# arguments (--disable-pip-version-check pip==<version> ... --no-setuptools
# --no-wheel) when that file exists, and downloads it otherwise. The real script
# carries a pip wheel inside itself and runs `pip install --upgrade
# --force-reinstall` with those arguments. This one does the same with the pip
# wheel found in the local wheelhouse, which scripts/ansible-test.sh downloads
# from the package index once, so later runs need no network: pip itself then
# installs from the wheelhouse too. ansible-test passes pip only HOME and PATH,
# so the wheelhouse is the find-links of the pip configuration under HOME.
import configparser
import glob
import os
import sys


def _find_links():
    config = configparser.ConfigParser()
    config.read([os.environ.get('PIP_CONFIG_FILE') or '', os.path.expanduser('~/.config/pip/pip.conf')])
    return os.environ.get('PIP_FIND_LINKS') or config.get('global', 'find-links', fallback='')


def _pip_wheel(version):
    for directory in _find_links().split():
        matches = sorted(glob.glob(os.path.join(directory, 'pip-%s-py3-none-any.whl' % version)))
        if matches:
            return matches[0]
    sys.exit('get_pip_offline: no pip-%s-py3-none-any.whl in the find-links (%s); '
             'run scripts/ansible-test.sh --download while the package index is reachable'
             % (version, _find_links() or 'unset'))


def main():
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    versions = [arg.split('==', 1)[1] for arg in args if arg.startswith('pip==')]
    if not versions:
        sys.exit('get_pip_offline: expected a pip==<version> argument, got %r' % (sys.argv[1:],))
    # A wheel is a zip archive Python can import from; this is how get-pip runs pip too.
    sys.path.insert(0, _pip_wheel(versions[0]))
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel
    sys.exit(pip_main(['install', '--upgrade', '--force-reinstall'] + args))


if __name__ == '__main__':
    main()
