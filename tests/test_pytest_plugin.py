"""The pytest11 plugin: fixtures and assertion explanations, run in a child pytest."""


pytest_plugins = ["pytester"]


def test_fixtures_and_explanations(pytester, request):
    pytester.makepyfile(
        """
        import numpy as np
        from mlxq.testing import exact

        def test_fixture_passes(assert_arrays_equal):
            assert_arrays_equal(np.float32([1]), np.float32([1]))

        def test_explained():
            a = np.zeros((2, 3), np.float32)
            b = a.copy(); b[1, 1] = 2
            assert a == exact(b)
        """
    )
    # Installed packages load the plugin through the pytest11 entry point; a source tree
    # without an install needs it named explicitly.
    load = [] if request.config.pluginmanager.hasplugin("mlxq") else ["-p", "mlxq.pytest_plugin"]
    result = pytester.runpytest(*load, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*array: 1 of 6 elements differ*first at index (1, 1): 0.0 vs 2.0*"])
