;;; nib-test.el --- What nib's Emacs tests share -*- lexical-binding: t; -*-

;; Result lines ("ok …", "not ok …: why", "skip …: why") on stderr and
;; appended to $NIB_TEST_RESULTS, a test macro, and waiting on a condition
;; while processes run.

;;; Code:

(require 'cl-lib)

(defvar nib-test-label "emacs"
  "What result lines start with: \"emacs-real\", \"emacs-lsp-mode\"...")
(defvar nib-test-failed 0)

(defun nib-test-result (line)
  (message "[%s] %s" nib-test-label line)
  (when (getenv "NIB_TEST_RESULTS")
    (write-region (concat line "\n") nil (getenv "NIB_TEST_RESULTS") t 'silent)))

(defmacro nib-test (name &rest body)
  "Run BODY as the test NAME; a value (skip . WHY) reports a skip."
  (declare (indent 1))
  `(let ((full (format "%s: %s" nib-test-label ,name)))
     (condition-case err
         (let ((r (progn ,@body)))
           (if (and (consp r) (eq (car r) 'skip))
               (nib-test-result (format "skip %s: %s" full (cdr r)))
             (nib-test-result (format "ok %s" full))))
       (error (cl-incf nib-test-failed)
              (nib-test-result (format "not ok %s: %s" full (error-message-string err)))))))

(defun nib-test-wait (what seconds pred)
  "Wait up to SECONDS for PRED to return non-nil (WHAT names it); return it."
  (let ((end (+ (float-time) seconds)) v)
    (while (and (not (setq v (funcall pred))) (< (float-time) end))
      (accept-process-output nil 0.1))
    (or v (error "timed out after %ss waiting for %s" seconds what))))

(provide 'nib-test)
;;; nib-test.el ends here
