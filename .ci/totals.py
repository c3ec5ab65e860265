"""Print the plain total of the JUnit XML reports given: 'ci: N passed, N failed, N skipped'.

Exits 1 when the reports hold no executed test, so that an empty run cannot pass.
"""

import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        passed += tests - bad - skip
        failed += bad
        skipped += skip
print(f"ci: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(0 if passed and not failed else 1)
