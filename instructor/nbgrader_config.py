# nbgrader configuration for grading the pocket-parallel exercises (INSTRUCTORS.md, "With nbgrader").
# Copy it into the root of your nbgrader course folder; tests/test_nbgrader_roundtrip.py uses this file.
c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

c.CourseDirectory.course_id = "pocket-parallel"

# Each kernel nbgrader starts warns on stderr that it talks to nbgrader over local TCP, once per
# notebook graded; that is not about the students' work, so only errors are shown.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
